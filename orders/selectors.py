from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import User
from core.filters import MAX_ID
from core.permissions import staff_has_any_perm
from core.replicas import read_with_fallback
from inventory.models import Product

from .models import Order, OrderEvent, OrderLine
from .statuses import OrderStatus

# Orders that count towards revenue: everything placed except what was
# cancelled or failed (their stock went back, nobody paid for them).
NOT_REVENUE = (OrderStatus.CANCELLED, OrderStatus.FAILED)


def can_see_all_orders(user) -> bool:
    """Whether `user` sees every order: staff with the view or change
    permission (as in the admin); anyone else sees their own."""
    return staff_has_any_perm(user, "orders.view_order", "orders.change_order")


def orders_with_lines() -> QuerySet[Order]:
    """Orders ready to serialize with a fixed number of queries."""
    return Order.objects.select_related("customer").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("id"))
    )


def order_list(*, user) -> QuerySet[Order]:
    """The orders `user` may see, ready to serialize with a fixed number of
    queries: staff who may view orders see every order, anyone else their own."""
    orders = orders_with_lines()
    if not can_see_all_orders(user):
        orders = orders.filter(customer=user)
    return orders


# A search term matches at most this many catalogue SKUs, and a customer list
# is handed to the database as values up to this many (a subquery beyond).
SEARCH_MAX_SKUS = 200
SEARCH_MAX_CUSTOMER_IDS = 1000


def order_search(orders: QuerySet[Order], term: str) -> QuerySet[Order]:
    """The orders of `orders` that a search for `term` means — the same rule
    for the API's `?search=` and the admin's search box:

    - a number (`123` or `#123`) is an order number, or a SKU spelled exactly
      so (any case);
    - anything else is part of the customer's e-mail address or part of a
      SKU in the order (matched against the catalogue's SKUs, then looked up
      in the lines by their index), or exactly a SKU as ordered.

    Each kind of match is looked up first in a small table (users, products)
    or by an index, and only the kinds that can match are asked of the
    orders, so a search never reads every order or line."""
    term = term.strip()
    if not term:
        return orders
    number = term.removeprefix("#")
    if number.isascii() and number.isdigit():
        matches = Q(pk=int(number)) if int(number) <= MAX_ID else Q(pk__in=[])
        skus = set(Product.objects.filter(sku__iexact=number).values_list("sku", flat=True))
    else:
        matches = Q(pk__in=[])
        customers = User.objects.filter(email__icontains=term).values_list("pk", flat=True)
        ids = list(customers[: SEARCH_MAX_CUSTOMER_IDS + 1])
        if len(ids) > SEARCH_MAX_CUSTOMER_IDS:
            matches |= Q(customer__in=customers)
        elif ids:
            matches |= Q(customer_id__in=ids)
        skus = set(
            Product.objects.filter(sku__icontains=term).values_list("sku", flat=True)[
                :SEARCH_MAX_SKUS
            ]
        )
        if OrderLine.objects.filter(sku=term).exists():
            skus.add(term)  # a SKU as ordered, even if the catalogue has renamed it since
    if skus:
        matches |= Exists(OrderLine.objects.filter(order=OuterRef("pk"), sku__in=skus))
    return orders.filter(matches)


def order_event_list(*, order: Order) -> QuerySet[OrderEvent]:
    """An order's history, oldest first."""
    return (
        OrderEvent.objects.filter(order=order).select_related("actor").order_by("created_at", "id")
    )


def order_units(*, order_ids) -> dict[int, int]:
    """How many units each of the orders holds: `{order_id: units}`, in one
    query over their lines (for a page of a list, not the whole table)."""
    rows = (
        OrderLine.objects.filter(order_id__in=order_ids)
        .order_by()
        .values_list("order_id")
        .annotate(units=Sum("quantity"))
    )
    return dict(rows)


def order_export_rows(
    *, orders: QuerySet[Order], chunk_size: int = 2000, user=None
) -> Iterator[Order]:
    """Every order of `orders` with its customer and lines, latest placed
    (highest id) first, fetched `chunk_size` at a time by keyset
    (`id < last`): memory stays at one chunk and no query slows down as the
    export goes deeper. Each chunk is read from a replica when one may serve
    `user` (core/replicas.py); one failing midway hands the rest to the primary."""
    base = orders.select_related("customer").order_by("-pk")
    last_id = None
    while True:
        chunk_orders = base if last_id is None else base.filter(pk__lt=last_id)
        chunk = read_with_fallback(
            lambda chunk_orders=chunk_orders: list(
                chunk_orders.prefetch_related(
                    Prefetch("lines", queryset=OrderLine.objects.order_by("id"))
                )[:chunk_size]
            ),
            user=user,
        )
        yield from chunk
        if len(chunk) < chunk_size:
            return
        last_id = chunk[-1].pk


# --- The admin dashboard ----------------------------------------------------------


def _start_of_day(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def order_counts_by_status(*, day: date | None = None) -> dict[str, int]:
    """How many of the orders placed on `day` (default: today, in the
    project's time zone) are in each status now. One indexed range scan."""
    day = day or timezone.localdate()
    start = _start_of_day(day)
    rows = (
        Order.objects.filter(
            created_at__gte=start, created_at__lt=_start_of_day(day + timedelta(1))
        )
        .order_by()
        .values_list("status")
        .annotate(count=Count("id"))
    )
    counts = dict.fromkeys(OrderStatus.values, 0)
    counts.update(rows)
    return counts


def order_revenue_by_day(*, first: date, last: date) -> list[tuple[date, int, Decimal]]:
    """`(day, orders, revenue)` for each day from `first` to `last` (in the
    project's time zone), days without orders included. Revenue is the total
    of the orders placed that day that were not cancelled or failed."""
    rows = (
        Order.objects.filter(
            created_at__gte=_start_of_day(first), created_at__lt=_start_of_day(last + timedelta(1))
        )
        .exclude(status__in=NOT_REVENUE)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .order_by()
        .values_list("day")
        .annotate(orders=Count("id"), revenue=Sum("total"))
    )
    by_day = {day: (orders, revenue) for day, orders, revenue in rows}
    return [
        (day, *by_day.get(day, (0, Decimal("0.00"))))
        for day in (first + timedelta(n) for n in range((last - first).days + 1))
    ]
