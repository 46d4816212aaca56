"""Admin lists of big tables: counted without a COUNT(*) over the table, and
paged no deeper than a bounded OFFSET (EstimatedCountPaginator)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import UserFactory
from core.pagination import EstimatedCountPaginator
from orders.models import Order
from orders.tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

ORDERS = reverse("admin:orders_order_changelist")


@pytest.fixture
def orders():
    customer = UserFactory()
    return OrderFactory.create_batch(7, customer=customer)


def count_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]


def test_a_short_list_is_counted_exactly(orders):
    paginator = EstimatedCountPaginator(Order.objects.all(), per_page=2)
    assert paginator.count == 7
    assert not paginator.count_is_estimate
    assert paginator.num_pages == 4
    assert not paginator.pages_are_capped


def test_a_list_longer_than_the_exact_limit_is_marked_as_estimated(orders, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_count_limit", 3)
    paginator = EstimatedCountPaginator(Order.objects.all(), per_page=2)
    assert paginator.count_is_estimate
    assert paginator.count >= 4


@pytest.mark.postgres
def test_on_postgresql_a_long_list_is_never_counted_to_the_end(orders, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_count_limit", 3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    with CaptureQueriesContext(connection) as queries:
        paginator = EstimatedCountPaginator(Order.objects.all(), per_page=2)
        assert paginator.count == 7  # the planner's statistics, just gathered
    assert any(q["sql"].startswith("EXPLAIN (FORMAT JSON)") for q in queries)
    counts = count_queries(queries)
    assert counts and all("LIMIT 4" in sql for sql in counts)


def test_pages_stop_at_the_cap(orders, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "max_offset", 2)
    paginator = EstimatedCountPaginator(Order.objects.all(), per_page=2)
    assert paginator.num_pages == 2
    assert paginator.pages_are_capped
    assert list(paginator.page(2).object_list) == list(Order.objects.all()[2:4])


def test_the_order_list_says_about_and_where_the_pages_stop(admin_client, orders, monkeypatch):
    from orders.admin import OrderAdmin

    monkeypatch.setattr(EstimatedCountPaginator, "exact_count_limit", 3)
    monkeypatch.setattr(EstimatedCountPaginator, "max_offset", 0)
    monkeypatch.setattr(OrderAdmin, "list_per_page", 2)
    html = " ".join(admin_client.get(ORDERS).content.decode().split())
    # The planner's estimate: at least what the capped count saw (it may be
    # more where earlier tests left dead rows in the table's pages).
    about = re.search(r"about ([\d,]+) orders", html)
    assert about and int(about[1].replace(",", "")) >= 7, html[-2000:]
    assert "the first 1 pages are shown" in html
    # A page past the cap is refused the way Django refuses a bad page number.
    past = admin_client.get(ORDERS, {"p": "2"})
    assert past.status_code == 302 and "e=1" in past["Location"]


def test_the_ledger_list_is_counted_the_same_way(admin_client):
    from inventory.admin import StockMovementAdmin

    assert StockMovementAdmin.paginator is EstimatedCountPaginator
    response = admin_client.get(reverse("admin:inventory_stockmovement_changelist"))
    assert response.status_code == 200
