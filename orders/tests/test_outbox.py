"""The outbox (SPEC §9): every change that writes an order event or a stock
movement also writes a domain event, in the same transaction; an order's
events are numbered; nothing is announced before commit."""

from decimal import Decimal

import pytest
from django.db import transaction

from accounts.tests.factories import StaffFactory, UserFactory
from core import events as outbox
from core.models import Event
from core.testing import client_for
from inventory import services as inventory
from inventory.api.serializers import StaffProductSerializer
from inventory.models import Product
from inventory.tests.factories import ProductFactory
from orders import processing, services
from orders.statuses import OrderStatus
from orders.tests.factories import place_order

pytestmark = pytest.mark.django_db

S = OrderStatus


def events_of(order) -> list[tuple]:
    return list(
        Event.objects.filter(aggregate="order", aggregate_id=order.pk)
        .order_by("id")
        .values_list("type", "sequence")
    )


def test_placing_an_order_writes_order_created_with_the_order_as_the_api_shows_it():
    customer = UserFactory()
    product = ProductFactory(price=Decimal("12.50"), stock=10)
    response = client_for(customer).post(
        "/api/v1/orders/", {"items": [{"product_id": product.pk, "quantity": 2}]}, format="json"
    )

    event = Event.objects.get(type="order.created")

    assert (event.aggregate, event.aggregate_id, event.sequence) == (
        "order",
        response.json()["id"],
        1,
    )
    assert event.data == {"order": response.json()}
    assert event.webhook_id.startswith("evt_") and event.published_at is None


def test_every_move_and_edit_writes_a_numbered_event_with_from_and_to():
    staff = StaffFactory()
    order = place_order(UserFactory(), (ProductFactory(stock=5), 1))
    services.order_transition(order=order, to_status=S.PROCESSING, actor=None)
    services.order_update_details(order=order, actor=staff, notes="Gift wrap")
    services.order_transition(order=order, to_status=S.SHIPPED, actor=staff)

    assert events_of(order) == [
        ("order.created", 1),
        ("order.status_changed", 2),
        ("order.updated", 3),
        ("order.status_changed", 4),
    ]
    shipped = Event.objects.filter(aggregate_id=order.pk).last()
    assert (shipped.data["from"], shipped.data["to"]) == ("processing", "shipped")
    assert shipped.data["order"]["status"] == "shipped"
    assert shipped.data["order"]["notes"] == "Gift wrap"
    updated = Event.objects.get(aggregate_id=order.pk, type="order.updated")
    assert updated.data["fields"] == ["notes"]


def test_a_processing_batch_writes_its_events_in_bulk_numbered_per_order():
    product = ProductFactory(stock=20)
    orders = [place_order(UserFactory(), (product, 1)) for _ in range(3)]
    services.order_update_details(order=orders[1], actor=StaffFactory(), notes="x")

    processing.process_pending_batch(batch_size=10)

    assert [events_of(order)[-1] for order in orders] == [
        ("order.status_changed", 2),
        ("order.status_changed", 3),
        ("order.status_changed", 2),
    ]
    moved = Event.objects.filter(type="order.status_changed").first()
    assert moved.data["order"]["items"][0]["quantity"] == 1


def test_a_refused_placement_writes_no_event():
    product = ProductFactory(stock=1)
    with pytest.raises(Exception, match="Not enough stock"):
        place_order(UserFactory(), (product, 2))
    assert not Event.objects.exists()


def test_a_transaction_that_rolls_back_takes_its_events_with_it():
    product = ProductFactory(stock=5)
    with pytest.raises(RuntimeError), transaction.atomic():
        place_order(UserFactory(), (product, 1))
        assert Event.objects.count() == 1
        raise RuntimeError("the caller fails after placing")
    assert not Event.objects.exists()


def test_stock_falling_to_the_threshold_writes_product_low_stock_once():
    product = ProductFactory(sku="LOW-1", stock=10, low_stock_threshold=5)
    place_order(UserFactory(), (product, 4))  # 6 left: above
    assert not Event.objects.filter(type="product.low_stock").exists()
    place_order(UserFactory(), (product, 1))  # 5 left: at the threshold
    place_order(UserFactory(), (product, 1))  # 4: already low, not again
    inventory.stock_adjust(product=product, delta=-1, reason="damage", actor=None)

    low = list(Event.objects.filter(type="product.low_stock"))
    assert len(low) == 1
    assert low[0].aggregate_id == product.pk
    assert low[0].data["product"]["stock_available"] == 5


def test_a_restock_then_a_damage_crossing_the_threshold_is_announced_again():
    product = ProductFactory(stock=6, low_stock_threshold=5)
    inventory.stock_adjust(product=product, delta=-2, reason="damage", actor=None)
    inventory.stock_adjust(product=product, delta=10, reason="restock", actor=None)
    inventory.stock_adjust(product=product, delta=-10, reason="correction", actor=None)
    assert Event.objects.filter(type="product.low_stock").count() == 2


def test_the_product_in_an_event_is_the_product_as_staff_see_it():
    product = ProductFactory(stock=6, low_stock_threshold=5, price=Decimal("9.9"))
    inventory.stock_adjust(product=product, delta=-1, reason="damage", actor=None)
    event = Event.objects.get(type="product.low_stock")
    assert event.data["product"] == StaffProductSerializer(Product.objects.get(pk=product.pk)).data


@pytest.mark.django_db(transaction=True)
def test_handlers_hear_of_events_once_per_transaction_and_only_after_commit(monkeypatch):
    heard = []
    monkeypatch.setattr(outbox, "_handlers", [lambda: heard.append(Event.objects.count())])
    product = ProductFactory(stock=10, low_stock_threshold=8)

    with transaction.atomic():
        place_order(UserFactory(), (product, 3))  # order.created and product.low_stock
        place_order(UserFactory(), (product, 1))
        assert heard == []
    assert heard == [3]


@pytest.mark.django_db(transaction=True)
def test_a_failing_handler_neither_fails_the_request_nor_loses_the_event(monkeypatch, caplog):
    def broker_down():
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(outbox, "_handlers", [broker_down])
    product = ProductFactory(stock=10)
    response = client_for(UserFactory()).post(
        "/api/v1/orders/", {"items": [{"product_id": product.pk, "quantity": 1}]}, format="json"
    )
    assert response.status_code == 201
    assert Event.objects.filter(type="order.created", published_at__isnull=True).count() == 1
    assert "events wait for the sweep" in caplog.text
