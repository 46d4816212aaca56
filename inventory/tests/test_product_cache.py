"""GET /api/v1/products/{id}/ from the Redis cache (inventory/cache.py): the
same bytes and the same 404s as the database path, for customers and for
staff, and never an old state after a change: each writer of a product's row
(catalogue edits, stock adjustments, placing, cancelling and shipping
orders, the admin) invalidates it."""

import threading

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer

from accounts.tests.factories import StaffFactory, UserFactory
from accounts.tests.helpers import bearer_client
from core.testing import assert_no_read_older_than_a_change
from inventory import services
from inventory.api.serializers import ProductSerializer, StaffProductSerializer
from inventory.models import Product
from inventory.tests.factories import ProductFactory
from orders import services as order_services
from orders.statuses import OrderStatus
from orders.tests.factories import place_order

pytestmark = [
    pytest.mark.skipif(
        not isinstance(caches["default"], RedisCache), reason="needs Redis: set REDIS_URL"
    ),
    pytest.mark.django_db(transaction=True),
]


def url(product) -> str:
    return f"/api/v1/products/{product.pk}/"


def plain_json(product, *, staff: bool) -> bytes:
    """What the database path renders for `product` as it is now."""
    serializer = StaffProductSerializer if staff else ProductSerializer
    return JSONRenderer().render(serializer(Product.objects.get(pk=product.pk)).data)


@pytest.fixture
def product():
    return ProductFactory(stock=20)


@pytest.fixture
def staff():
    return StaffFactory(perms=["inventory.view_product", "inventory.adjust_stock"])


def test_a_cached_product_is_the_bytes_the_database_path_renders(product, staff):
    for client, is_staff in [(bearer_client(UserFactory()), False), (bearer_client(staff), True)]:
        cold = client.get(url(product))
        with CaptureQueriesContext(connection) as queries:
            warm = client.get(url(product))
        assert cold.status_code == warm.status_code == 200
        assert cold["Content-Type"] == warm["Content-Type"] == "application/json"
        assert cold.content == warm.content == plain_json(product, staff=is_staff)
        assert len(queries) == 0  # neither the user nor the product was read
    assert "stock_on_hand" in bearer_client(staff).get(url(product)).json()
    assert "stock_on_hand" not in bearer_client(UserFactory()).get(url(product)).json()


def test_an_inactive_product_is_a_404_for_customers_cold_and_warm(product, staff, api_client):
    product.is_active = False
    product.save()
    missing = api_client.get("/api/v1/products/999999/")
    for _ in range(2):
        response = api_client.get(url(product))
        assert response.status_code == 404
        assert response.json() == missing.json()
    assert bearer_client(staff).get(url(product)).status_code == 200
    # Staff warmed the staff entry: customers still get the 404.
    assert bearer_client(UserFactory()).get(url(product)).status_code == 404


def test_every_writer_of_the_row_reaches_the_cache(product, staff, superuser, admin_client):
    customer, admin = UserFactory(), superuser
    reader = bearer_client(customer)

    def available() -> int:
        assert bearer_client(staff).get(url(product)).status_code == 200  # staff entry warm too
        return reader.get(url(product)).json()["stock_available"]

    assert available() == 20
    order = place_order(customer, (product, 3))  # placing reserves (one statement on PG)
    assert available() == 17
    order_services.order_cancel(order=order, actor=customer)  # cancelling releases
    assert available() == 20
    services.stock_adjust(product=product, delta=5, reason="restock", actor=staff)
    assert available() == 25
    shipped = place_order(customer, (product, 2))
    for to_status in (OrderStatus.PROCESSING, OrderStatus.SHIPPED):  # shipping consumes
        order_services.order_transition(order=shipped, to_status=to_status, actor=admin)
    assert available() == 23
    assert bearer_client(staff).get(url(product)).json()["stock_on_hand"] == 23
    services.product_update(product=product, data={"name": "Renamed"})
    assert reader.get(url(product)).json()["name"] == "Renamed"
    # The admin's form saves the row through the ORM.
    Product.objects.filter(pk=product.pk).first().save()  # any other ORM save
    response = admin_client.post(
        f"/admin/inventory/product/{product.pk}/change/",
        {
            "sku": product.sku,
            "name": "From the admin",
            "description": "",
            "price": "9.99",
            "low_stock_threshold": 1,
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert reader.get(url(product)).json()["name"] == "From the admin"
    assert reader.get(url(product)).content == plain_json(product, staff=False)


def test_under_concurrent_reads_no_read_after_a_change_shows_the_old_state(product, staff):
    """Readers hammer the product while staff adjust its stock 20 times:
    every read that starts after an adjustment has returned shows it or a
    later one, and so does the writer's own read."""
    writer, customer, clients = bearer_client(staff), UserFactory(), threading.local()

    def read() -> int:
        if not hasattr(clients, "customer"):
            clients.customer = bearer_client(customer)  # one client a thread
        return clients.customer.get(url(product)).json()["stock_available"]

    def write(n):
        response = writer.post(
            f"{url(product)}stock-adjustments/", {"delta": 1, "reason": "restock"}, format="json"
        )
        assert response.status_code == 201, response.content

    assert_no_read_older_than_a_change(read=read, write=write, changes=20, start=20)
