"""What the admin index shows: today's orders by status, revenue over the
last 30 days as a bar chart drawn on the server (SVG, no script, nothing from
a CDN), and the products running low.

Each panel is one query whose cost is bounded by a time window or a LIMIT,
not by the size of the tables."""

import logging
from contextlib import suppress
from datetime import timedelta
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from redis.exceptions import RedisError

from core.replicas import read_with_fallback
from inventory.selectors import product_low_stock
from orders.selectors import order_counts_by_status, order_revenue_by_day
from orders.statuses import OrderStatus

logger = logging.getLogger(__name__)

REVENUE_DAYS = 30
PAST_REVENUE_CACHE_SECONDS = 300
LOW_STOCK_SHOWN = 10

# The chart's drawing area, in SVG user units (it scales to its box).
CHART_WIDTH, CHART_HEIGHT, CHART_TOP = 600, 150, 12


class Bar(NamedTuple):
    x: int
    y: int
    width: int
    height: int
    label: str


def revenue_chart(days) -> dict:
    """Bars (and their tooltips) for `[(day, orders, revenue), ...]`."""
    peak = max((revenue for _, _, revenue in days), default=Decimal(0))
    slot = CHART_WIDTH // len(days)
    bars = []
    for index, (day, orders, revenue) in enumerate(days):
        height = int(revenue * (CHART_HEIGHT - CHART_TOP) / peak) if peak else 0
        if revenue and not height:
            height = 1  # a day with any revenue stays visible
        bars.append(
            Bar(
                x=index * slot + 1,
                y=CHART_HEIGHT - height,
                width=slot - 2,
                height=height,
                label=f"{day:%a %d %b}: {revenue:,.2f} {settings.CURRENCY} from {orders} orders",
            )
        )
    return {
        "bars": bars,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "peak": peak,
        "first_day": days[0][0],
        "last_day": days[-1][0],
    }


def revenue_by_day(today) -> list:
    """The last `REVENUE_DAYS` days of revenue. Today's is counted on every
    view (one day of orders, through the date index); the days before change
    only when an older order is cancelled or fails, so they are cached for
    `PAST_REVENUE_CACHE_SECONDS` rather than re-added over the whole window
    on each visit."""
    yesterday = today - timedelta(days=1)
    first = today - timedelta(days=REVENUE_DAYS - 1)
    key = f"dashboard:revenue:{first}:{yesterday}"
    try:
        past = cache.get(key)
    except (RedisError, OSError) as exc:
        logger.warning("Dashboard cache unavailable, revenue counted afresh: %s", exc)
        past = None
    if past is None:
        past = order_revenue_by_day(first=first, last=yesterday)
        with suppress(RedisError, OSError):
            cache.set(key, past, PAST_REVENUE_CACHE_SECONDS)
    return [*past, *order_revenue_by_day(first=today, last=today)]


def dashboard_context(request) -> dict:
    """The dashboard's panels that `request.user` may see, read from a
    replica when one may serve the user (core/replicas.py)."""
    return read_with_fallback(lambda: _panels(request), user=request.user)


def _panels(request) -> dict:
    user = request.user
    context = {"dashboard": True, "currency": settings.CURRENCY}
    if user.has_perm("orders.view_order"):
        counts = order_counts_by_status()
        changelist = reverse("admin:orders_order_changelist")
        today = timezone.localdate()
        day_query = (
            f"created_at__year={today.year}&created_at__month={today.month}"
            f"&created_at__day={today.day}"
        )
        context["orders_today"] = {
            "total": sum(counts.values()),
            "url": f"{changelist}?{day_query}",
            "statuses": [
                {
                    "label": label,
                    "count": counts[value],
                    "url": f"{changelist}?{day_query}&status__exact={value}",
                }
                for value, label in OrderStatus.choices
            ],
        }
        days = revenue_by_day(today)
        context["revenue"] = {
            "days": REVENUE_DAYS,
            "total": sum((revenue for _, _, revenue in days), Decimal("0.00")),
            "orders": sum(orders for _, orders, _ in days),
            "today": days[-1][2],
            "chart": revenue_chart(days),
        }
    if user.has_perm("inventory.view_product"):
        products = list(product_low_stock().by_available()[: LOW_STOCK_SHOWN + 1])
        context["low_stock"] = {
            "products": products[:LOW_STOCK_SHOWN],
            "more": len(products) > LOW_STOCK_SHOWN,
            "more_url": reverse("admin:inventory_product_changelist")
            + "?stock=low&is_active__exact=1",
        }
    return context
