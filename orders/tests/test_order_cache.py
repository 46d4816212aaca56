"""GET /api/v1/orders/{id}/ from the Redis cache (orders/cache.py): the same
bytes and the same 404s as the database path, and never an old state after a
change — for the writer at once, for other readers within a second (here:
from the moment the change's commit returns)."""

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
from inventory.tests.factories import ProductFactory
from orders import services
from orders.api.serializers import OrderSerializer
from orders.models import Order
from orders.processing import process_pending_orders
from orders.selectors import orders_with_lines
from orders.tests.factories import place_order

pytestmark = [
    pytest.mark.skipif(
        not isinstance(caches["default"], RedisCache), reason="needs Redis: set REDIS_URL"
    ),
    pytest.mark.django_db(transaction=True),
]


def url(order) -> str:
    return f"/api/v1/orders/{order.pk}/"


def plain_json(order) -> bytes:
    """What the database path renders for `order` as it is now."""
    return JSONRenderer().render(OrderSerializer(orders_with_lines().get(pk=order.pk)).data)


@pytest.fixture
def customer():
    return UserFactory()


@pytest.fixture
def order(customer):
    products = [ProductFactory(stock=20) for _ in range(3)]
    return place_order(customer, *((p, 2) for p in products), notes="first")


def test_a_cached_order_is_the_bytes_the_database_path_renders(customer, order):
    client = bearer_client(customer)
    cold = client.get(url(order))
    with CaptureQueriesContext(connection) as queries:
        warm = client.get(url(order))
    assert cold.status_code == warm.status_code == 200
    assert cold["Content-Type"] == warm["Content-Type"] == "application/json"
    assert cold.content == warm.content == plain_json(order)
    assert len(queries) == 0  # neither the user nor the order was read


def test_someone_else_s_order_is_a_404_cold_and_warm_like_a_missing_one(customer, order):
    stranger = bearer_client(UserFactory())
    missing = stranger.get("/api/v1/orders/999999999/")
    assert missing.status_code == 404
    assert stranger.get(url(order)).json() == missing.json()  # cold
    assert bearer_client(customer).get(url(order)).status_code == 200  # now cached
    assert stranger.get(url(order)).json() == missing.json()  # warm


def test_staff_read_any_order_only_with_the_view_permission(customer, order):
    bearer_client(customer).get(url(order))  # cached
    assert bearer_client(StaffFactory(perms=[])).get(url(order)).status_code == 404
    viewer = StaffFactory(perms=["orders.view_order"])
    response = bearer_client(viewer).get(url(order))
    assert response.status_code == 200
    assert response.content == plain_json(order)


def test_the_writer_reads_its_change_at_once(customer, order):
    client = bearer_client(customer)
    assert client.get(url(order)).json()["notes"] == "first"
    assert client.patch(url(order), {"notes": "second"}, format="json").status_code == 200
    assert client.get(url(order)).json()["notes"] == "second"
    assert client.post(f"{url(order)}cancel/", {}, format="json").status_code == 200
    body = client.get(url(order))
    assert body.json()["status"] == "cancelled"
    assert body.content == plain_json(order)


def test_a_move_by_the_worker_and_an_e_mail_change_reach_the_cache(customer, order):
    client = bearer_client(customer)
    assert client.get(url(order)).json()["status"] == "pending"
    process_pending_orders()
    assert client.get(url(order)).json()["status"] == "processing"
    customer.email = "renamed@example.com"
    customer.save()
    assert client.get(url(order)).json()["customer"]["email"] == "renamed@example.com"


def test_an_order_event_published_invalidates_its_order(customer, order):
    """The safety net: an order changed behind the services' back (here an
    UPDATE) is corrected once one of its events is published."""
    from core.events import events_publish

    client = bearer_client(customer)
    client.get(url(order))
    Order.objects.filter(pk=order.pk).update(notes="behind the back")
    assert client.get(url(order)).json()["notes"] == "first"  # cached
    events_publish()
    assert client.get(url(order)).json()["notes"] == "behind the back"


def test_under_concurrent_reads_no_read_after_a_change_shows_the_old_state(customer, order):
    """Readers hammer the order while the owner changes it 30 times: every
    read that starts after a change has returned shows that change or a later
    one, and so does the writer's own read."""
    staff = StaffFactory(perms=["orders.view_order"])
    writer, clients = bearer_client(customer), threading.local()

    def read() -> int:
        if not hasattr(clients, "staff"):
            clients.staff = bearer_client(staff)  # one client a thread
        notes = clients.staff.get(url(order)).json()["notes"]
        return int(notes) if notes.isdigit() else 0

    def write(n):
        assert writer.patch(url(order), {"notes": str(n)}, format="json").status_code == 200

    assert_no_read_older_than_a_change(read=read, write=write, changes=30)
    services.order_update_details(order=order.pk, actor=customer, notes="final")
    assert bearer_client(staff).get(url(order)).json()["notes"] == "final"
