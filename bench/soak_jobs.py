"""The parts of the soak test that run inside Django, one process per job.

bench/soak.py starts each job with the venv's python and the same environment
as the stack it tests (DATABASE_URL, SECRET_KEY, JWT_ACCESS_MINUTES, ...); a
job prints its result as one last stdout line, "BENCH_JSON {...}" (the helpers
of bench/django_jobs.py are reused).

    prepare   restock the demo products, make the soak users, mint their
              tokens and write the wrk script's data file (a Lua table)
    check     the invariants the soak must leave intact, and what the
              database holds at the end
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Also puts the project on sys.path and sets DJANGO_SETTINGS_MODULE.
import django_jobs

CUSTOMER_EMAIL = "soak.customer{:02d}@example.com"
STAFF_EMAIL = "soak.staff@example.com"
FOREIGN_ORDERS = 200  # seeded orders (of other customers) asked for to get a 404
VIOLATIONS_KEPT = 10  # examples shown per broken invariant


def prepare(args) -> None:
    from django.db.models import Max

    from accounts.services import user_tokens
    from inventory.models import StockMovement
    from orders.models import Order, OrderEvent

    products = django_jobs.demo_products()
    added = django_jobs.restock(products, args.available)
    customers = [django_jobs.bench_user(CUSTOMER_EMAIL.format(n)) for n in range(args.customers)]
    staff = django_jobs.bench_user(STAFF_EMAIL, staff=True)
    data = {
        "customer_tokens": [user_tokens(user=user)["access"] for user in customers],
        "staff_token": user_tokens(user=staff)["access"],
        "products": [p.pk for p in products],
        "foreign_orders": django_jobs.sample_order_ids(FOREIGN_ORDERS),
    }
    django_jobs.write_lua_data(args.out, data, "bench/soak_jobs.py prepare")
    # What existed before the load: the check tells the soak's own rows apart.
    django_jobs.emit(
        {
            "products": len(products),
            "units_added": added,
            "customers": len(customers),
            "orders": Order.objects.count(),
            "max_order_id": Order.objects.aggregate(m=Max("pk"))["m"] or 0,
            "max_event_id": OrderEvent.objects.aggregate(m=Max("pk"))["m"] or 0,
            "max_movement_id": StockMovement.objects.aggregate(m=Max("pk"))["m"] or 0,
        }
    )


def check(args) -> None:
    """Each invariant as {"name", "ok", "detail", "examples"}; then figures."""
    from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum

    from inventory.models import Product, StockMovement
    from inventory.selectors import stock_ledger_totals
    from orders.models import IdempotencyRecord, Order, OrderEmail, OrderEvent, OrderLine
    from orders.statuses import HOLDING_STOCK, OrderStatus

    invariants = []

    def record(name: str, broken: int, examples: list, checked: int, what: str) -> None:
        detail = f"{checked:,} {what}"
        invariants.append(
            {
                "name": name,
                "ok": broken == 0,
                "detail": f"{broken:,} of {detail} break it" if broken else detail,
                "examples": [str(x) for x in examples[:VIOLATIONS_KEPT]],
            }
        )

    def record_products(name: str, bad: list) -> None:
        record(name, len(bad), bad, len(products), "products")

    def record_orders(name: str, bad, describe, checked: int) -> None:
        """`bad`: a queryset of the orders breaking it (counted, a few shown)."""
        examples = [describe(*row) for row in bad[:VIOLATIONS_KEPT]]
        record(name, bad.count() if examples else 0, examples, checked, "orders")

    # --- stock, per product --------------------------------------------------------
    held = dict(
        OrderLine.objects.filter(order__status__in=HOLDING_STOCK)
        .values("product")
        .annotate(units=Sum("quantity"))
        .values_list("product", "units")
    )
    products = list(Product.objects.order_by("pk"))
    reserved_bad, bounds_bad, ledger_bad, stock = [], [], [], []
    for p in products:
        units = held.get(p.pk, 0)
        ledger = stock_ledger_totals(product_id=p.pk)
        if p.stock_reserved != units:
            reserved_bad.append(f"{p.sku}: reserved {p.stock_reserved}, orders hold {units}")
        if not 0 <= p.stock_reserved <= p.stock_on_hand:
            bounds_bad.append(f"{p.sku}: reserved {p.stock_reserved}, on hand {p.stock_on_hand}")
        if ledger != (p.stock_on_hand, p.stock_reserved):
            ledger_bad.append(
                f"{p.sku}: ledger {ledger}, product ({p.stock_on_hand}, {p.stock_reserved})"
            )
        stock.append(
            {
                "sku": p.sku,
                "active": p.is_active,
                "on_hand": p.stock_on_hand,
                "reserved": p.stock_reserved,
                "available": p.stock_on_hand - p.stock_reserved,
            }
        )
    record_products("reserved == units on pending + processing orders", reserved_bad)
    record_products("0 <= reserved <= on hand", bounds_bad)
    record_products("ledger totals == (on hand, reserved)", ledger_bad)
    zero = list(StockMovement.objects.filter(quantity=0).values_list("pk", flat=True))
    record(
        "no stock movement of 0 units",
        len(zero),
        [f"movement {pk}" for pk in zero],
        StockMovement.objects.count(),
        "movements",
    )

    # --- orders ----------------------------------------------------------------------
    orders = Order.objects.count()
    record_orders(
        "every order has exactly one `created` event",
        Order.objects.annotate(
            created=Count("events", filter=Q(events__type=OrderEvent.Type.CREATED))
        )
        .exclude(created=1)
        .values_list("pk", "created"),
        lambda pk, n: f"order {pk}: {n} created events",
        orders,
    )
    last_move = Subquery(
        OrderEvent.objects.filter(order=OuterRef("pk"), type=OrderEvent.Type.STATUS_CHANGED)
        .order_by("-created_at", "-pk")
        .values("to_status")[:1]
    )
    # Every move writes an event: the latest one names the status the order has.
    record_orders(
        "each order's latest status event names its status",
        Order.objects.annotate(last=last_move)
        .exclude(Q(last__isnull=True, status=OrderStatus.PENDING) | Q(last=F("status")))
        .values_list("pk", "status", "last"),
        lambda pk, status, last: f"order {pk}: status {status}, latest event to {last}",
        orders,
    )
    confirmed = [OrderStatus.PROCESSING, OrderStatus.SHIPPED, OrderStatus.DELIVERED]
    no_email = Order.objects.filter(status__in=confirmed).filter(
        ~Exists(OrderEmail.objects.filter(order=OuterRef("pk"), kind=OrderEmail.Kind.CONFIRMATION))
    )
    # seed_demo writes histories without an outbox, so only the soak's own
    # orders (placed, then processed by the worker) are held to this.
    record_orders(
        "every order placed during the soak and now processing/shipped/delivered "
        "has a confirmation OrderEmail",
        no_email.filter(pk__gt=args.max_order_id).values_list("pk", "status"),
        lambda pk, status: f"order {pk} ({status})",
        Order.objects.filter(pk__gt=args.max_order_id, status__in=confirmed).count(),
    )

    # Every order the soak placed came with an Idempotency-Key: one record per
    # order, each answering a different order, and no record of a refusal.
    records = IdempotencyRecord.objects.all()
    answered = records.filter(response_status=201)
    distinct = answered.values("response_body__id").distinct().count()
    soak_orders = Order.objects.filter(pk__gt=args.max_order_id).count()
    broken = abs(records.count() - soak_orders) + (answered.count() - distinct)
    record(
        "one Idempotency-Key record per order placed, each answering its own order",
        broken,
        [
            f"{records.count()} records, {answered.count()} answering 201 with {distinct} "
            f"distinct orders, for {soak_orders} orders placed"
        ]
        if broken
        else [],
        soak_orders,
        "orders",
    )

    # --- figures -------------------------------------------------------------------
    def by_status(queryset) -> dict[str, int]:
        rows = queryset.values("status").annotate(n=Count("pk")).order_by()
        return {row["status"]: row["n"] for row in rows}

    moves = (
        OrderEvent.objects.filter(pk__gt=args.max_event_id, type=OrderEvent.Type.STATUS_CHANGED)
        .values("from_status", "to_status", "actor__is_staff")
        .annotate(n=Count("pk"))
        .order_by()
    )
    emails = OrderEmail.objects.aggregate(
        total=Count("pk"),
        sent=Count("pk", filter=Q(sent_at__isnull=False)),
        unsent=Count("pk", filter=Q(sent_at__isnull=True)),
        retried=Count("pk", filter=Q(attempts__gt=1)),
        with_error=Count("pk", filter=~Q(last_error="")),
    )
    django_jobs.emit(
        {
            "invariants": invariants,
            "orders": orders,
            "orders_by_status": by_status(Order.objects.all()),
            "soak_orders": soak_orders,
            "soak_orders_by_status": by_status(Order.objects.filter(pk__gt=args.max_order_id)),
            "seeded_confirmed_without_email": no_email.filter(pk__lte=args.max_order_id).count(),
            "moves": [
                {
                    "from": m["from_status"],
                    "to": m["to_status"],
                    "by": "staff"
                    if m["actor__is_staff"]
                    else ("system" if m["actor__is_staff"] is None else "customer"),
                    "n": m["n"],
                }
                for m in moves
            ],
            "emails": emails,
            "movements": StockMovement.objects.filter(pk__gt=args.max_movement_id).count(),
            "stock": stock,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="job", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", required=True, help="the Lua data file")
    p.add_argument("--customers", type=int, default=40)
    p.add_argument("--available", type=int, default=200, help="units available per product")
    c = sub.add_parser("check")
    for bound in ("--max-order-id", "--max-event-id", "--max-movement-id"):
        c.add_argument(bound, type=int, default=0, help="the last row before the soak")
    args = parser.parse_args()

    import django

    django.setup()
    {"prepare": prepare, "check": check}[args.job](args)


if __name__ == "__main__":
    main()
