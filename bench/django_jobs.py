"""The parts of the benchmark that run inside Django, one process per job.

bench/run.py starts each job with the venv's python and the environment the
job needs (DATABASE_URL, SECRET_KEY, DEBUG, ...); a job prints progress on
stderr and its result as one last stdout line, "BENCH_JSON {...}".

    prepare     restock the demo products, make the bench users, mint their
                tokens and write the wrk scripts' data file (a Lua table)
    restock     restock the demo products only (the pgbench database)
    queries     SQL statements per request, through Django's test client
    process     time orders.processing.process_pending_orders until no order
                is pending, and watch the process's memory
"""

import argparse
import json
import os
import random
import resource
import secrets
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_project.settings")

CUSTOMERS = 64
CUSTOMER_EMAIL = "bench.customer{:02d}@example.com"
STAFF_EMAIL = "bench.staff@example.com"
# The 100-line orders use products of their own, so that they do not lock the
# demo products that the 3-line scenario hammers.
MANY_LINES = 100
MANY_SKU = "BENCH-{:03d}"
# Units kept available per product before each run: far more than a run
# reserves (orders stay pending: no worker runs during the benchmark).
DEMO_AVAILABLE = 5_000_000
MANY_AVAILABLE = 500_000
ORDER_SAMPLE = 2000


def emit(payload: dict) -> None:
    print("BENCH_JSON " + json.dumps(payload), flush=True)


def progress(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


# --- prepare / restock ------------------------------------------------------------


def demo_products():
    from inventory.models import Product
    from orders.management.commands.seed_demo import DEMO_PRODUCTS

    skus = [row[0] for row in DEMO_PRODUCTS]
    return list(Product.objects.filter(sku__in=skus, is_active=True).order_by("pk"))


def many_products():
    """The 100 bench products, made through the catalogue service when missing."""
    from inventory import services as inventory
    from inventory.models import Product

    skus = [MANY_SKU.format(n) for n in range(MANY_LINES)]
    existing = set(Product.objects.filter(sku__in=skus).values_list("sku", flat=True))
    for sku in skus:
        if sku not in existing:
            inventory.product_create(sku=sku, name=f"Bench product {sku}", price=Decimal("5.00"))
    return list(Product.objects.filter(sku__in=skus, is_active=True).order_by("pk"))


def restock(products, available: int) -> int:
    """Top each product up to `available` units through the stock service (so
    the ledger still explains the figures), never past MAX_STOCK on hand."""
    from inventory import services as inventory
    from inventory.models import MAX_STOCK

    added = 0
    for product in products:
        product.refresh_from_db()
        delta = min(available - product.stock_available, MAX_STOCK - product.stock_on_hand)
        if delta > 0:
            inventory.stock_adjust(
                product=product, delta=delta, reason="restock", actor=None, note="bench/run.py"
            )
            added += delta
    return added


def bench_user(email: str, *, staff: bool = False):
    from django.contrib.auth.models import Permission

    from accounts.models import User

    user = User.objects.filter(email=email).first()
    if user is None:
        # No password: these accounts only ever use the tokens minted below.
        user = User.objects.create_user(email=email, password=None, is_staff=staff)
    if staff:
        # What an order manager holds: staff status alone grants nothing.
        user.user_permissions.set(
            Permission.objects.filter(
                codename__in=["view_order", "change_order", "move_order", "view_product"]
            )
        )
    return user


def sample_order_ids(count: int) -> list[int]:
    """Ids of `count` existing orders spread over the whole table."""
    from django.db.models import Max, Min

    from orders.models import Order

    bounds = Order.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return []
    span = range(bounds["low"], bounds["high"] + 1)
    candidates = random.Random(1).sample(span, min(len(span), count * 2))  # noqa: S311
    return list(Order.objects.filter(pk__in=candidates).values_list("pk", flat=True)[:count])


def lua_list(values) -> str:
    return "{" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values) + "}"


def write_lua_data(path, data: dict, written_by: str) -> None:
    """`data` as a Lua module (`return { key = value, ... }`) for wrk's scripts."""
    lines = [
        f"  {key} = {lua_list(value) if isinstance(value, list) else repr(value)},"
        for key, value in data.items()
    ]
    Path(path).write_text(
        f"-- Written by {written_by}; bench tokens, do not commit.\nreturn {{\n"
        + "\n".join(lines)
        + "\n}\n"
    )


def prepare(args) -> None:
    from accounts.services import user_tokens
    from orders.models import Order

    demo, many = demo_products(), many_products()
    added = restock(demo, DEMO_AVAILABLE) + restock(many, MANY_AVAILABLE)
    progress(f"restocked {added:,} units over {len(demo)} demo + {len(many)} bench products")
    customers = [bench_user(CUSTOMER_EMAIL.format(n)) for n in range(CUSTOMERS)]
    staff = bench_user(STAFF_EMAIL, staff=True)
    order_ids = sample_order_ids(ORDER_SAMPLE)
    data = {
        "customer_tokens": [user_tokens(user=user)["access"] for user in customers],
        "staff_token": user_tokens(user=staff)["access"],
        "demo_products": [p.pk for p in demo],
        "many_products": [p.pk for p in many],
        "order_ids": order_ids,
    }
    write_lua_data(args.out, data, "bench/django_jobs.py prepare")
    emit(
        {
            "orders": Order.objects.count(),
            "demo_products": data["demo_products"],
            "customers": len(customers),
            "order_ids": len(order_ids),
        }
    )


def restock_only(args) -> None:
    from accounts.models import User

    demo = demo_products()
    restock(demo, DEMO_AVAILABLE)
    customer = User.objects.filter(is_staff=False).order_by("pk").first()
    emit({"demo_products": [p.pk for p in demo], "customer_id": customer.pk})


# --- queries ----------------------------------------------------------------------


def queries(args) -> None:
    """SQL statements of one request of each scenario, as production runs it:
    the real Authorization header, no test transaction around it. Each request
    is made once before it is counted, so one-off work (the first connection,
    lazy imports) does not count."""
    from django.test import Client
    from query_count import count_queries

    from accounts.services import user_tokens
    from orders.models import Order

    customer = bench_user(CUSTOMER_EMAIL.format(0))
    staff = bench_user(STAFF_EMAIL, staff=True)
    customer_token = user_tokens(user=customer)["access"]
    staff_token = user_tokens(user=staff)["access"]
    demo = [p.pk for p in demo_products()]
    many = [p.pk for p in many_products()]
    rng = random.Random()  # noqa: S311
    client = Client()

    def create(product_ids):
        def send():
            body = {"items": [{"product_id": pk, "quantity": 1} for pk in product_ids]}
            return client.post(
                "/api/v1/orders/",
                data=json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {customer_token}",
                HTTP_IDEMPOTENCY_KEY=f"bench-queries-{secrets.token_hex(8)}",
            )

        return send

    def get(path):
        return lambda: client.get(path, HTTP_AUTHORIZATION=f"Bearer {staff_token}")

    some_order = Order.objects.order_by("-pk").values_list("pk", flat=True).first()
    requests = {
        "create": create(rng.sample(demo, 3)),
        "create_many": create(many),
        "detail": get(f"/api/v1/orders/{some_order}/"),
        "list": get("/api/v1/orders/?page_size=20"),
    }
    emit(count_queries(requests))


# --- process ----------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def process(args) -> None:
    import logging

    from django.conf import settings

    from orders.models import Order, OrderEmail
    from orders.processing import process_pending_orders
    from orders_project.celery import app

    # The confirmation e-mails are handed to Celery after each batch commits.
    # An in-process broker takes them without a server, and nothing sends
    # them: this measures the processing, not the mail.
    app.conf.broker_url = "memory://localhost/"

    class Counter(logging.Handler):
        count = 0

        def emit(self, record):
            self.count += 1

    # A failed hand-off to the broker, or an order that could not move, is
    # logged as a warning or an error by the orders app.
    problems = Counter(level=logging.WARNING)
    logging.getLogger("orders").addHandler(problems)

    batch_size = settings.ORDER_PROCESSING_BATCH_SIZE
    pending = Order.objects.filter(status="pending").count()
    progress(f"{pending:,} pending orders, batches of {batch_size}")
    rss_start = rss_bytes()
    started = time.perf_counter()
    # A zero budget stops the run after its first batch: the memory then is
    # the baseline that the end of the run is compared with.
    first = process_pending_orders(batch_size=batch_size, time_budget=0)
    rss_first = rss_bytes()
    runs, processed, failed, batches = [first], first.processed, first.failed, first.batches
    while runs[-1].more:
        run = process_pending_orders(batch_size=batch_size, time_budget=3600)
        runs.append(run)
        processed, failed, batches = (
            processed + run.processed,
            failed + run.failed,
            batches + run.batches,
        )
    seconds = time.perf_counter() - started
    emit(
        {
            "pending_before": pending,
            "pending_after": Order.objects.filter(status="pending").count(),
            "processed": processed,
            "failed": failed,
            "batches": batches,
            "batch_size": batch_size,
            "seconds": seconds,
            "orders_per_s": processed / seconds if seconds else 0,
            "rss_start_mb": rss_start / 2**20,
            "rss_first_batch_mb": rss_first / 2**20,
            "rss_end_mb": rss_bytes() / 2**20,
            # ru_maxrss is in KiB on Linux.
            "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "emails_queued": OrderEmail.objects.count(),
            "warnings_logged": problems.count,
        }
    )


# --- webhooks -------------------------------------------------------------------------


def subscribe(args) -> None:
    """Subscribe `args.url` to every event (or, with --remove, drop it)."""
    from webhooks import services
    from webhooks.models import Subscription

    for subscription in Subscription.objects.filter(url=args.url):
        services.subscription_delete(subscription=subscription)
    if args.remove:
        emit({"removed": True})
        return
    subscription, _ = services.subscription_create(url=args.url, events=["*"])
    emit({"subscription": subscription.pk})


def webhooks_pending(args) -> None:
    from webhooks.models import Delivery

    emit(
        {
            "pending": Delivery.objects.filter(status="pending").count(),
            "succeeded": Delivery.objects.filter(status="succeeded").count(),
        }
    )


def sender(args) -> None:
    """Deliveries per second of one sending process: `args.events` events
    for one subscription to a fast local receiver, fanned out and sent."""
    from django.db import transaction

    from core.events import event, events_record
    from webhooks import services
    from webhooks.models import Delivery, Subscription

    Subscription.objects.all().delete()
    services.subscription_create(url=args.url, events=["*"])
    with transaction.atomic():
        events_record(
            event(
                "order.created",
                aggregate="order",
                aggregate_id=n,
                sequence=1,
                data={"order": {"id": n, "status": "pending", "items": []}},
            )
            for n in range(1, args.events + 1)
        )
    started = time.perf_counter()
    result = services.webhooks_run(time_budget=600)
    seconds = time.perf_counter() - started
    emit(
        {
            "events": args.events,
            "succeeded": Delivery.objects.filter(status="succeeded").count(),
            "seconds": seconds,
            "per_s": result["succeeded"] / seconds if seconds else 0,
        }
    )


# --- backups ----------------------------------------------------------------------


def export_job(args) -> None:
    """A full export of every order to the backup storage (BACKUP_STORAGE_URL),
    timed, with the process's peak memory."""
    from backups import exports

    started = time.perf_counter()
    export = exports.orders_export()
    seconds = time.perf_counter() - started
    emit(
        {
            "name": export.name,
            "count": export.count,
            "bytes": export.size,
            "seconds": seconds,
            "orders_per_s": export.count / seconds if seconds else 0,
            "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def restore_job(args) -> None:
    """Restore `args.source` into this (empty) database, timed."""
    from backups import exports

    started = time.perf_counter()
    report = exports.orders_restore(source=args.source)
    seconds = time.perf_counter() - started
    emit(
        {
            "orders": report.orders,
            "seconds": seconds,
            "orders_per_s": report.orders / seconds if seconds else 0,
            "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="job", required=True)
    sub.add_parser("prepare").add_argument("--out", required=True, help="the Lua data file")
    sub.add_parser("restock")
    sub.add_parser("queries")
    sub.add_parser("process")
    subscribing = sub.add_parser("subscribe")
    subscribing.add_argument("--url", required=True)
    subscribing.add_argument("--remove", action="store_true")
    sub.add_parser("webhooks_pending")
    sending = sub.add_parser("sender")
    sending.add_argument("--url", required=True)
    sending.add_argument("--events", type=int, default=5000)
    sub.add_parser("export")
    sub.add_parser("restore").add_argument("source")
    args = parser.parse_args()

    import django

    django.setup()
    jobs = {
        "prepare": prepare,
        "restock": restock_only,
        "queries": queries,
        "process": process,
        "subscribe": subscribe,
        "webhooks_pending": webhooks_pending,
        "sender": sender,
        "export": export_job,
        "restore": restore_job,
    }
    jobs[args.job](args)


if __name__ == "__main__":
    main()
