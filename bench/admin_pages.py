"""Admin back office at scale: how long the order pages take with a big
table, how many queries they run, and what a 100k-order CSV export costs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/orders_bench \\
        .venv/bin/python bench/admin_pages.py --orders 1000000

Seeds the database with `seed_demo` up to `--orders` (skipped when it holds
that many already), then requests each page through Django's test client
(no network, no server: the figures are the app and the database) and prints
one line per page: median and worst time over `--repeat` views, and the SQL
queries of one view. Not a test: nothing here passes or fails.
"""

import argparse
import os
import secrets
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_project.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")  # the test client speaks plain HTTP
os.environ.setdefault("ADMIN_REQUIRE_2FA", "0")  # force_login: the pages, not the second factor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders to have (seeded)")
    parser.add_argument("--repeat", type=int, default=7, help="views per page")
    parser.add_argument("--export-status", default="pending", help="the exported list's status")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from orders.models import Order

    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database: the figures are meant for it.")
    call_command("migrate", verbosity=0)
    if Order.objects.count() < args.orders:
        print(f"Seeding up to {args.orders:,} orders (a few minutes per million)...", flush=True)
        call_command(
            "seed_demo",
            orders=args.orders,
            top_up=True,
            customers=2000,
            seed=1,
            not_production=True,
        )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    total = Order.objects.count()
    staff, _ = User.objects.get_or_create(
        email="bench-admin@example.com", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(staff)

    some_order = Order.objects.order_by("-pk").values_list("pk", flat=True)[500]
    some_email = staff.email if not total else Order.objects.get(pk=some_order).customer.email
    pages = [
        ("dashboard", "/admin/"),
        ("order list, page 1", "/admin/orders/order/"),
        ("order list, page 200 (the last)", "/admin/orders/order/?p=200"),
        ("order list, status filter", "/admin/orders/order/?status__exact=processing"),
        ("order list, this month", _this_month()),
        ("order search, order number", f"/admin/orders/order/?q=%23{some_order}"),
        ("order search, e-mail", f"/admin/orders/order/?q={some_email}"),
        ("order search, SKU", "/admin/orders/order/?q=PEN-003"),
        ("order page", f"/admin/orders/order/{some_order}/change/"),
        ("stock ledger, page 1", "/admin/inventory/stockmovement/"),
        ("products", "/admin/inventory/product/"),
    ]

    print(f"\n{total:,} orders; {args.repeat} views per page (Django test client, no network)\n")
    print(f"{'page':<34} {'median ms':>10} {'worst ms':>9} {'queries':>8}")
    for name, url in pages:
        client.get(url)  # warm caches, as a staff member browsing would
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        print(f"{name:<34} {statistics.median(times):>10.1f} {max(times):>9.1f} {len(queries):>8}")

    export_url = f"/admin/orders/order/export/?status__exact={args.export_status}"
    exported = Order.objects.filter(status=args.export_status).count()
    started = time.perf_counter()
    rows, size = _drain(client.get(export_url))
    seconds = time.perf_counter() - started
    tracemalloc.start()
    _drain(client.get(export_url))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"\nCSV export of the {exported:,} {args.export_status} orders: {rows - 1:,} rows, "
        f"{size / 1e6:.1f} MB in {seconds:.1f} s ({(rows - 1) / seconds:,.0f} orders/s); "
        f"peak Python memory while streaming {peak / 1e6:.1f} MB"
    )


def _this_month() -> str:
    from django.utils import timezone

    today = timezone.localdate()
    return f"/admin/orders/order/?created_at__year={today.year}&created_at__month={today.month}"


def _drain(response) -> tuple[int, int]:
    assert response.status_code == 200
    rows = size = 0
    for chunk in response.streaming_content:
        rows += 1
        size += len(chunk)
    return rows, size


if __name__ == "__main__":
    main()
