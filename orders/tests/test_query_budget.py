"""The SQL each hot request costs, pinned so a regression fails CI (issue 7).

These run without the test transaction (`transaction=True`), so they count
exactly what production runs: no test savepoints around the services'
own. A count must not grow with the size of the request or of the page."""

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import StaffFactory, UserFactory
from accounts.tests.helpers import bearer_client
from inventory.tests.factories import ProductFactory
from orders import services
from orders.tests.factories import place_order

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = "/api/v1/orders/"

# Django logs BEGIN and COMMIT too; they are counted. With an Idempotency-Key:
# authentication, BEGIN, claim the key, lock the customer and count their open
# orders (the per-customer limit: two statements), lock and read the products,
# insert the order, reserve (one UPDATE, one INSERT into the ledger), insert
# the lines, insert the history event, insert the outbox events (the order's
# and any low-stock ones, together), store the response, COMMIT.
# On PostgreSQL the placement's writes after the order's INSERT (the
# reservation's UPDATE and ledger rows, the lines, the history event, the
# outbox events) go as one statement: 4 fewer (orders.services._place, ONE_STATEMENT_WRITES).
ONE_STATEMENT = 4 if connection.vendor == "postgresql" and services.ONE_STATEMENT_WRITES else 0
# With Redis, the authentication comes from accounts.auth_cache once warm
# (the orders API's writes never save the user): one statement fewer.
REDIS = isinstance(caches["default"], RedisCache)
AUTH = 1 if REDIS else 0
CREATE_WITH_KEY = 14 - ONE_STATEMENT - AUTH
CREATE = 12 - ONE_STATEMENT - AUTH  # the same without the key's claim and response
DETAIL = 3  # authentication, the order with its customer, its lines
# Staff: authentication, their permissions and their groups' (Django reads
# both once per request), the capped count, the page with customers, its lines.
LIST = 6
# With Redis, a read's authentication comes from accounts.auth_cache and an
# order's JSON from orders.cache once the first request has stored them.
DETAIL_WARM = 0 if REDIS else DETAIL
LIST_WARM = 3 if REDIS else LIST  # the capped count, the page, its lines


def post_order(client, products, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    body = {"items": [{"product_id": p.pk, "quantity": 1} for p in products]}
    with CaptureQueriesContext(connection) as queries:
        response = client.post(ORDERS, body, format="json", **headers)
    assert response.status_code == 201, response.content
    return len(queries), response.json()


@pytest.fixture
def products():
    return [ProductFactory(stock=50) for _ in range(100)]


def test_placing_an_order_costs_the_same_for_3_lines_as_for_100(products):
    client = bearer_client(UserFactory())
    client.get(ORDERS)  # a warm process: the user's authentication state is cached
    three, body = post_order(client, products[:3], key="three")
    assert len(body["items"]) == 3
    hundred, body = post_order(client, products, key="hundred")
    assert len(body["items"]) == 100
    assert three == hundred == CREATE_WITH_KEY
    assert post_order(client, products[:3])[0] == post_order(client, products)[0] == CREATE


def test_the_response_to_a_placement_is_the_order_as_stored(products):
    client = bearer_client(UserFactory())
    _, body = post_order(client, products[:3], key="k")
    assert client.get(f"{ORDERS}{body['id']}/").json() == body


def test_reading_an_order_costs_three_queries_then_none(products, django_assert_num_queries):
    customer = UserFactory()
    order = place_order(customer, *((p, 1) for p in products[:5]))
    client = bearer_client(customer)
    with django_assert_num_queries(DETAIL):
        assert client.get(f"{ORDERS}{order.pk}/").status_code == 200
    with django_assert_num_queries(DETAIL_WARM):
        assert client.get(f"{ORDERS}{order.pk}/").status_code == 200


@pytest.mark.parametrize("orders", [3, 25])
def test_a_page_of_orders_costs_the_same_whatever_its_size(
    products, orders, django_assert_num_queries
):
    customers = [UserFactory() for _ in range(3)]
    for n in range(orders):
        place_order(customers[n % 3], *((p, 1) for p in products[n % 7 : n % 7 + 4]))
    client = bearer_client(StaffFactory())
    with django_assert_num_queries(LIST):
        response = client.get(ORDERS, {"page_size": 20})
    with django_assert_num_queries(LIST_WARM):
        assert client.get(ORDERS, {"page_size": 20}).json() == response.json()
    assert response.status_code == 200
    assert len(response.json()["results"]) == min(orders, 20)
    assert all(len(order["items"]) == 4 for order in response.json()["results"])
