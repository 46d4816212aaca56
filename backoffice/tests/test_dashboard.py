"""The admin index as a dashboard (SPEC §8): today's orders by status,
revenue over the last 30 days as a server-drawn chart, low-stock products."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.cache.backends.redis import RedisCache
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import StaffFactory, UserFactory
from backoffice import dashboard
from inventory.tests.factories import ProductFactory
from orders import services
from orders.models import Order
from orders.tests.factories import place_order

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")


@pytest.fixture
def mug():
    return ProductFactory(sku="MUG-001", price=Decimal("10.00"), stock=100, low_stock_threshold=5)


def place_days_ago(days, customer, *lines):
    order = place_order(customer, *lines)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(days=days))
    return order


def test_the_dashboard_counts_todays_orders_by_status(admin_client, mug, superuser):
    customer = UserFactory()
    orders = [place_order(customer, (mug, 1)) for _ in range(3)]
    services.order_cancel(order=orders[0], actor=superuser)
    place_days_ago(1, customer, (mug, 1))  # yesterday's: not today's
    today = admin_client.get(INDEX).context["orders_today"]
    assert today["total"] == 3
    counts = {status["label"]: status["count"] for status in today["statuses"]}
    assert counts == {
        "Pending": 2,
        "Processing": 0,
        "Shipped": 0,
        "Delivered": 0,
        "Cancelled": 1,
        "Failed": 0,
    }
    pending = next(status for status in today["statuses"] if status["label"] == "Pending")
    assert pending["url"].endswith("&status__exact=pending")
    assert admin_client.get(pending["url"]).context["cl"].result_count == 2


def test_revenue_adds_up_the_last_30_days_without_cancelled_or_failed_orders(
    admin_client, mug, superuser
):
    customer = UserFactory()
    place_order(customer, (mug, 2))  # today: 20.00
    place_days_ago(3, customer, (mug, 5))  # 50.00
    cancelled = place_days_ago(3, customer, (mug, 7))
    services.order_cancel(order=cancelled, actor=superuser)
    place_days_ago(30, customer, (mug, 9))  # outside the 30 days
    revenue = admin_client.get(INDEX).context["revenue"]
    assert revenue["total"] == Decimal("70.00")
    assert revenue["today"] == Decimal("20.00")
    assert revenue["orders"] == 2
    bars = revenue["chart"]["bars"]
    assert len(bars) == 30
    assert [bar.height > 0 for bar in bars].count(True) == 2
    assert bars[-4].height == 150 - 12  # the highest day fills the chart
    assert bars[-1].height == int(Decimal(20) * (150 - 12) / Decimal(50))


def test_the_chart_is_svg_drawn_on_the_server_with_nothing_from_elsewhere(admin_client, mug):
    place_order(UserFactory(), (mug, 1))
    html = admin_client.get(INDEX).content.decode()
    chart = html.split('<svg class="revenue-chart"')[1].split("</svg>")[0]
    assert chart.count('<rect class="bar"') == 30
    today = timezone.localdate()
    assert f"{today:%a %d %b}: 10.00 {settings.CURRENCY} from 1 orders" in chart
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html.replace("https://docs.djangoproject.com", "")
    assert '<script src="http' not in html


def test_past_days_revenue_is_cached_and_today_is_counted_on_each_view(admin_client, mug):
    customer = UserFactory()
    place_days_ago(2, customer, (mug, 1))
    assert admin_client.get(INDEX).context["revenue"]["total"] == Decimal("10.00")
    place_days_ago(2, customer, (mug, 1))  # an older day: cached a few minutes
    place_order(customer, (mug, 3))  # today: seen at once
    assert admin_client.get(INDEX).context["revenue"]["total"] == Decimal("40.00")


def test_the_dashboard_lists_low_stock_products_lowest_first(admin_client):
    ProductFactory(sku="PLENTY", stock=100, low_stock_threshold=5)
    ProductFactory(sku="LOW", stock=4, low_stock_threshold=5)
    ProductFactory(sku="OUT", stock=0, low_stock_threshold=5)
    ProductFactory(sku="RETIRED", stock=0, is_active=False)
    low = admin_client.get(INDEX).context["low_stock"]
    assert [(p.sku, p.available) for p in low["products"]] == [("OUT", 0), ("LOW", 4)]
    assert low["more"] is False


def test_the_dashboard_shows_at_most_ten_low_stock_products(admin_client):
    for n in range(12):
        ProductFactory(sku=f"LOW-{n:02d}", stock=n, low_stock_threshold=20)
    low = admin_client.get(INDEX).context["low_stock"]
    assert len(low["products"]) == 10 and low["more"] is True


# The session, the user, today's orders by status, today's revenue (the 29
# days before come from the cache after the first view), the low-stock
# products, and Django's "Recent actions".
DASHBOARD_QUERIES = 6


@pytest.mark.parametrize("days", [0, 20])
def test_the_dashboard_costs_six_queries_whatever_the_number_of_orders(
    admin_client, mug, days, django_assert_num_queries
):
    customer = UserFactory()
    place_order(customer, (mug, 1))
    for day in range(days):
        place_days_ago(day, customer, (mug, 1))
        ProductFactory(stock=1, low_stock_threshold=3)
    assert admin_client.get(INDEX).status_code == 200  # fills the cache of past days
    with django_assert_num_queries(DASHBOARD_QUERIES):
        assert admin_client.get(INDEX).status_code == 200


def test_the_dashboard_works_when_the_cache_is_down(admin_client, mug, monkeypatch):
    place_order(UserFactory(), (mug, 1))
    unreachable = RedisCache(
        "redis://127.0.0.1:9/0",  # nothing listens there
        {"OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}},
    )
    monkeypatch.setattr(dashboard, "cache", unreachable)
    response = admin_client.get(INDEX)
    assert response.status_code == 200
    assert response.context["revenue"]["total"] == Decimal("10.00")


def test_staff_see_only_the_panels_their_permissions_allow(client, mug):
    staff = StaffFactory()
    staff.user_permissions.set(Permission.objects.filter(codename="view_product"))
    client.force_login(staff)
    context = client.get(INDEX).context
    assert "orders_today" not in context and "revenue" not in context
    assert "low_stock" in context
