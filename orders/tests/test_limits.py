"""What one customer may hold (issue 15): no single account takes the whole
stock. MAX_UNITS_PER_LINE units of a product per line (409 limit_exceeded)
and MAX_OPEN_ORDERS_PER_CUSTOMER orders still reserving stock (429
too_many_open_orders); staff placing orders for customers are not limited."""

import pytest

from accounts.tests.factories import StaffFactory, UserFactory
from core.testing import assert_error, client_for, run_together
from inventory.models import Product
from inventory.tests.factories import ProductFactory
from orders import services
from orders.models import Order
from orders.statuses import OrderStatus
from orders.tests.factories import place_order

pytestmark = pytest.mark.django_db

LIST = "/api/v1/orders/"


def order_body(*lines):
    return {"items": [{"product_id": p.pk, "quantity": q} for p, q in lines]}


def reserved() -> list[int]:
    return list(Product.objects.order_by("pk").values_list("stock_reserved", flat=True))


def test_the_review_s_replay_a_fresh_account_cannot_take_the_whole_stock(settings):
    # As the review did it: one request for everything on the shelves.
    settings.MAX_UNITS_PER_LINE = 100
    shelves = [ProductFactory(stock=stock) for stock in (500, 300, 200, 120, 75, 15, 12, 4, 3)]
    client = client_for(UserFactory())

    response = client.post(LIST, order_body(*((p, p.stock_on_hand) for p in shelves)))

    assert_error(response, 409, "limit_exceeded", "items.0.quantity")
    assert reserved() == [0] * len(shelves)
    assert not Order.objects.exists()


def test_a_line_at_the_limit_is_accepted_and_one_more_is_refused(settings):
    settings.MAX_UNITS_PER_LINE = 5
    product = ProductFactory(stock=50)
    client = client_for(UserFactory())

    assert client.post(LIST, order_body((product, 5))).status_code == 201
    refused = client.post(LIST, order_body((product, 1), (ProductFactory(stock=9), 6)))

    assert_error(refused, 409, "limit_exceeded", "items.1.quantity")
    assert Order.objects.count() == 1


def test_open_orders_are_capped_and_a_shipped_or_cancelled_one_frees_a_place(settings):
    settings.MAX_OPEN_ORDERS_PER_CUSTOMER = 2
    product = ProductFactory(stock=50)
    customer = UserFactory()
    client = client_for(customer)
    first, second = (client.post(LIST, order_body((product, 1))) for _ in range(2))
    assert (first.status_code, second.status_code) == (201, 201)

    third = client.post(LIST, order_body((product, 1)))
    assert_error(third, 429, "too_many_open_orders")
    # Another customer is not affected.
    assert client_for(UserFactory()).post(LIST, order_body((product, 1))).status_code == 201

    services.order_cancel(order=first.json()["id"], actor=customer)
    assert client.post(LIST, order_body((product, 1))).status_code == 201


def test_staff_placing_for_a_customer_are_not_limited(settings):
    settings.MAX_UNITS_PER_LINE = 5
    settings.MAX_OPEN_ORDERS_PER_CUSTOMER = 1
    product = ProductFactory(stock=50)
    customer = UserFactory()
    place_order(customer, (product, 1))
    body = {**order_body((product, 20)), "customer_id": customer.pk}

    response = client_for(StaffFactory()).post(LIST, body)

    assert response.status_code == 201, response.content
    assert Order.objects.filter(customer=customer, status=OrderStatus.PENDING).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_orders_of_one_customer_never_pass_the_cap(settings):
    settings.MAX_OPEN_ORDERS_PER_CUSTOMER = 3
    product = ProductFactory(stock=100)
    customer = UserFactory()

    answers = run_together(8, lambda i: client_for(customer).post(LIST, order_body((product, 1))))

    assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * 5
    assert Order.objects.filter(customer=customer).count() == 3
    assert Product.objects.get(pk=product.pk).stock_reserved == 3
