"""Races on orders, with real threads and real row locks: PostgreSQL only.

Each thread has its own database connection; `transaction=True` lets the
threads see each other's commits (the test is not wrapped in a transaction).
"""

import pytest

from accounts.tests.factories import StaffFactory, UserFactory
from core.testing import client_for, run_together
from inventory.models import Product, StockMovement
from inventory.tests.factories import ProductFactory
from inventory.tests.helpers import assert_ledger_explains
from orders import services
from orders.exceptions import InvalidTransition
from orders.models import IdempotencyRecord, Order, OrderEvent
from orders.statuses import OrderStatus

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LIST = "/api/v1/orders/"


def error_code(response) -> str:
    return response.json()["errors"][0]["code"]


def test_forty_customers_for_the_last_ten_units_make_exactly_ten_orders():
    product = ProductFactory(stock=10)
    customers = [UserFactory() for _ in range(40)]
    body = {"items": [{"product_id": product.pk, "quantity": 1}]}

    def order(i):
        return client_for(customers[i]).post(LIST, body, format="json")

    responses = run_together(40, order)
    assert not [r for r in responses if isinstance(r, Exception)], responses
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 10 + [409] * 30
    assert {error_code(r) for r in responses if r.status_code == 409} == {"insufficient_stock"}
    product.refresh_from_db()
    assert (product.stock_on_hand, product.stock_reserved) == (10, 10)
    assert_ledger_explains(product)
    assert Order.objects.count() == 10
    assert StockMovement.objects.filter(kind="reserve").count() == 10
    placed = {r.json()["id"] for r in responses if r.status_code == 201}
    assert placed == set(Order.objects.values_list("pk", flat=True))


def test_ten_concurrent_retries_with_one_key_make_one_order():
    product = ProductFactory(stock=100)
    customer = UserFactory()
    body = {"items": [{"product_id": product.pk, "quantity": 3}]}

    def order(i):
        return client_for(customer).post(
            LIST, body, format="json", HTTP_IDEMPOTENCY_KEY="checkout-42"
        )

    responses = run_together(10, order)
    assert not [r for r in responses if isinstance(r, Exception)], responses
    assert [r.status_code for r in responses] == [201] * 10, [r.content for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.get("Idempotent-Replayed") == "true" for r in responses) == 9
    assert Order.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
    product.refresh_from_db()
    assert product.stock_reserved == 3
    assert_ledger_explains(product)


def test_a_staff_cancel_racing_a_staff_ship_has_exactly_one_outcome():
    product = ProductFactory(stock=10)
    customer = UserFactory()
    staff = [StaffFactory() for _ in range(10)]
    order = services.order_place(
        customer=customer, items=[{"product_id": product.pk, "quantity": 3}]
    )
    services.order_transition(order=order, to_status=OrderStatus.PROCESSING, actor=None)
    url = f"{LIST}{order.pk}/"

    def act(i):
        client = client_for(staff[i])
        if i % 2:
            return "cancelled", client.post(f"{url}cancel/", format="json")
        return "shipped", client.patch(url, {"status": "shipped"}, format="json")

    results = run_together(10, act)
    assert not [r for r in results if isinstance(r, Exception)], results
    won = [(target, r) for target, r in results if r.status_code == 200]
    lost = [r for _, r in results if r.status_code != 200]
    assert len(won) == 1, [(t, r.status_code) for t, r in results]
    assert [r.status_code for r in lost] == [409] * 9
    assert {error_code(r) for r in lost} == {"invalid_transition"}

    outcome = won[0][0]
    assert won[0][1].json()["status"] == outcome
    order.refresh_from_db()
    assert order.status == outcome
    product.refresh_from_db()
    expected_on_hand = 10 if outcome == "cancelled" else 7
    assert (product.stock_on_hand, product.stock_reserved) == (expected_on_hand, 0)
    assert_ledger_explains(product)
    kinds = list(StockMovement.objects.filter(order=order).values_list("kind", flat=True))
    assert kinds == ["reserve", "release" if outcome == "cancelled" else "ship"]
    moves = OrderEvent.objects.filter(order=order, type=OrderEvent.Type.STATUS_CHANGED)
    assert list(moves.values_list("from_status", "to_status")) == [
        ("pending", "processing"),
        ("processing", outcome),
    ]


def test_a_staff_cancel_racing_a_staff_ship_through_the_services():
    product = ProductFactory(stock=10)
    staff = StaffFactory()
    order = services.order_place(
        customer=UserFactory(), items=[{"product_id": product.pk, "quantity": 4}]
    )
    services.order_transition(order=order, to_status=OrderStatus.PROCESSING, actor=None)

    def act(i):
        if i % 2:
            return services.order_cancel(order=order.pk, actor=staff)
        return services.order_transition(order=order.pk, to_status=OrderStatus.SHIPPED, actor=staff)

    results = run_together(8, act)
    won = [r for r in results if isinstance(r, Order)]
    assert len(won) == 1, results
    assert all(isinstance(r, InvalidTransition) for r in results if r not in won), results
    product.refresh_from_db()
    assert product.stock_reserved == 0
    assert product.stock_on_hand == (10 if won[0].status == "cancelled" else 6)
    assert_ledger_explains(product)


def test_many_owner_cancels_of_one_pending_order_release_it_once():
    a, b = ProductFactory(stock=10), ProductFactory(stock=10)
    customer = UserFactory()
    order = services.order_place(
        customer=customer,
        items=[{"product_id": a.pk, "quantity": 2}, {"product_id": b.pk, "quantity": 5}],
        actor=customer,
    )

    def cancel(i):
        return client_for(customer).post(f"{LIST}{order.pk}/cancel/", format="json")

    responses = run_together(10, cancel)
    assert not [r for r in responses if isinstance(r, Exception)], responses
    assert sorted(r.status_code for r in responses) == [200] + [409] * 9
    assert {error_code(r) for r in responses if r.status_code == 409} == {"invalid_transition"}
    assert Order.objects.get(pk=order.pk).status == "cancelled"
    for product in (a, b):
        product.refresh_from_db()
        assert (product.stock_on_hand, product.stock_reserved) == (10, 0)
        assert_ledger_explains(product)
        releases = StockMovement.objects.filter(order=order, product=product, kind="release")
        assert releases.count() == 1
    assert OrderEvent.objects.filter(order=order, to_status="cancelled").count() == 1
    assert Product.objects.filter(stock_reserved__gt=0).count() == 0
