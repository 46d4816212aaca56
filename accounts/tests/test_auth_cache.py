"""API reads authenticate from the Redis entry of accounts/auth_cache.py:
no database read per request, and every change that ends a session or takes
a permission away is refused or gone on the very next request, warm cache or
not."""

import pytest
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services
from accounts.tests.factories import StaffFactory, UserFactory, permissions
from accounts.tests.helpers import bearer_client

pytestmark = [
    pytest.mark.skipif(
        not isinstance(caches["default"], RedisCache), reason="needs Redis: set REDIS_URL"
    ),
    pytest.mark.django_db(transaction=True),
]

ORDERS = "/api/v1/orders/"
PRODUCTS = "/api/v1/products/"


def warm(client) -> None:
    assert client.get(ORDERS).status_code == 200


def test_a_warm_read_does_not_read_the_user():
    client = bearer_client(UserFactory())
    warm(client)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ORDERS).status_code == 200
    assert not any("accounts_user" in q["sql"] for q in queries.captured_queries)


@pytest.mark.parametrize(
    "end",
    [
        lambda user: (user.set_password("a-new-Password-123"), user.save()),
        lambda user: services.user_end_sessions(user=user),
        lambda user: (setattr(user, "is_active", False), user.save()),
        lambda user: user.delete(),
    ],
    ids=["password change", "log out everywhere", "deactivation", "deletion"],
)
def test_a_session_ended_is_refused_on_the_next_read(end):
    user = UserFactory()
    client = bearer_client(user)
    warm(client)
    end(user)
    assert client.get(ORDERS).status_code == 401
    assert client.get(PRODUCTS).status_code == 401


def test_a_permission_taken_away_is_gone_on_the_next_read():
    from orders.tests.factories import OrderFactory

    order = OrderFactory()
    staff = StaffFactory(perms=["orders.view_order"])
    client = bearer_client(staff)
    assert client.get(f"{ORDERS}{order.pk}/").status_code == 200
    staff.user_permissions.clear()
    assert client.get(f"{ORDERS}{order.pk}/").status_code == 404


def test_a_group_losing_a_permission_takes_it_from_its_members_at_once():
    from orders.tests.factories import OrderFactory

    order = OrderFactory()
    group = Group.objects.create(name="Readers")
    group.permissions.set(permissions("orders.view_order"))
    staff = StaffFactory(perms=[])
    staff.groups.add(group)
    client = bearer_client(staff)
    assert client.get(f"{ORDERS}{order.pk}/").status_code == 200
    group.permissions.clear()
    assert client.get(f"{ORDERS}{order.pk}/").status_code == 404
    group.permissions.set(permissions("orders.view_order"))
    assert client.get(f"{ORDERS}{order.pk}/").status_code == 200
    group.user_set.remove(staff)  # from the group's side
    assert client.get(f"{ORDERS}{order.pk}/").status_code == 404


def test_staff_status_taken_away_is_gone_at_once():
    from orders.tests.factories import OrderFactory

    order = OrderFactory()
    staff = StaffFactory(perms=["orders.view_order"])
    client = bearer_client(staff)
    assert client.get(f"{ORDERS}{order.pk}/").status_code == 200
    staff.is_staff = False
    staff.save()
    assert client.get(f"{ORDERS}{order.pk}/").status_code == 404


def test_the_profile_is_read_from_the_database():
    user = UserFactory(first_name="Ada")
    client = bearer_client(user)
    warm(client)
    user.first_name = "Grace"
    user.save(update_fields=["first_name"])
    assert client.get("/api/v1/auth/me/").json()["first_name"] == "Grace"


def test_after_a_secret_key_rotation_no_entry_of_the_old_key_is_read(settings):
    """The cached stamp is an HMAC by SECRET_KEY: an entry made before a
    rotation would refuse every token made after it, until it expired."""
    user = UserFactory()
    warm(bearer_client(user))
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert bearer_client(user).get(ORDERS).status_code == 200


@pytest.mark.parametrize(
    "end",
    [
        lambda user: services.user_end_sessions(user=user),
        lambda user: (setattr(user, "is_active", False), user.save()),
    ],
    ids=["log out everywhere", "deactivation"],
)
def test_the_orders_api_s_writes_use_the_cache_and_are_refused_at_once_too(end):
    """Placing an order takes its user from the cache (the orders API's
    writes never save the user); an ended session is still refused at once."""
    from inventory.tests.factories import ProductFactory

    product = ProductFactory(stock=5)
    user = UserFactory()
    client = bearer_client(user)
    body = {"items": [{"product_id": product.pk, "quantity": 1}]}
    assert client.post(ORDERS, body, format="json").status_code == 201
    with CaptureQueriesContext(connection) as queries:
        assert client.post(ORDERS, body, format="json").status_code == 201
    assert not any(
        q["sql"].startswith('SELECT "accounts_user"') for q in queries.captured_queries
    )  # no read of the user to authenticate (the limits lock its row: SELECT 1 ...)
    end(user)
    assert client.post(ORDERS, body, format="json").status_code == 401
