"""Big lists over the API (issue 7): the count is exact up to a limit and an
estimate beyond it, said so in a header; pages stop at a bounded depth."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import StaffFactory, UserFactory
from core.pagination import EstimatedCountPaginator
from core.testing import assert_error, client_for
from orders.tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"


@pytest.fixture
def orders():
    return OrderFactory.create_batch(7, customer=UserFactory())


@pytest.fixture
def staff():
    return client_for(StaffFactory())


def test_a_short_list_has_an_exact_count_and_no_estimate_header(staff, orders):
    response = staff.get(ORDERS)
    assert response.json()["count"] == 7
    assert "X-Count-Estimated" not in response


def test_a_list_past_the_exact_limit_says_its_count_is_an_estimate(staff, orders, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_count_limit", 3)
    response = staff.get(ORDERS)
    assert response["X-Count-Estimated"] == "true"
    assert response.json()["count"] >= 4


@pytest.mark.postgres
def test_on_postgresql_a_long_list_is_never_counted_to_the_end(staff, orders, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_count_limit", 3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    with CaptureQueriesContext(connection) as queries:
        response = staff.get(ORDERS)
    assert response.json()["count"] == 7  # the planner's statistics, just gathered
    assert any(q["sql"].startswith("EXPLAIN") for q in queries)
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 4" in sql for sql in counts)


def test_pages_stop_at_the_depth_bound_with_a_404_that_says_why(staff, orders, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "max_offset", 4)
    last = staff.get(ORDERS, {"page_size": 2, "page": 3}).json()
    assert len(last["results"]) == 2 and last["next"] is None
    response = staff.get(ORDERS, {"page_size": 2, "page": 4})
    assert_error(response, 404, "not_found")
    assert "Pages stop at 3" in response.json()["errors"][0]["detail"]


def test_without_the_bound_a_page_past_the_end_is_the_usual_404(staff, orders):
    response = staff.get(ORDERS, {"page": 2})
    assert_error(response, 404, "not_found")
    assert response.json()["errors"][0]["detail"] == ("Invalid page: That page contains no results")


def test_an_estimate_is_reused_for_a_few_seconds_but_an_exact_count_never(
    staff, orders, monkeypatch
):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_count_limit", 3)
    first = staff.get(ORDERS).json()["count"]
    OrderFactory.create_batch(2, customer=orders[0].customer)
    with CaptureQueriesContext(connection) as queries:
        assert staff.get(ORDERS).json()["count"] == first  # the estimate, reused
    assert not [q for q in queries if "COUNT(" in q["sql"].upper()]
    monkeypatch.setattr(EstimatedCountPaginator, "exact_count_limit", 100)
    assert staff.get(ORDERS, {"status": "pending"}).json()["count"] == 9  # exact: fresh
