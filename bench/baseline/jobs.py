"""The benchmark's jobs inside the baseline project (bench/run.py runs them
with the venv's python and DATABASE_URL, SECRET_KEY in the environment),
the counterparts of bench/django_jobs.py's `prepare` and `queries`:

    prepare --out F   restock the products, make the bench users, mint their
                      tokens and write the wrk scripts' data file (same keys
                      as the project's, so the same Lua scripts drive both)
    queries           SQL statements per request, through Django's test client

Each prints its result as one last stdout line, "BENCH_JSON {...}".
"""

import argparse
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: query_count
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "baseline_project.settings")

# As bench/django_jobs.py: 64 customers, one staff user, 2,000 orders for detail.
CUSTOMERS = 64
CUSTOMER_NAME = "bench.customer{:02d}"
STAFF_NAME = "bench.staff"
ORDER_SAMPLE = 2000
STOCK = 1_000_000_000  # far more than a run takes


def emit(payload: dict) -> None:
    print("BENCH_JSON " + json.dumps(payload), flush=True)


def bench_user(username: str, *, staff: bool = False):
    from django.contrib.auth.models import User

    user, _ = User.objects.get_or_create(
        username=username, defaults={"email": f"{username}@example.com", "is_staff": staff}
    )
    return user


def token(user) -> str:
    from rest_framework_simplejwt.tokens import AccessToken

    return str(AccessToken.for_user(user))


def products() -> tuple[list[int], list[int]]:
    """Ids of the demo products and of the 100 bench products."""
    from shop.models import Product

    ids = Product.objects.order_by("pk")
    # The discontinued hoodie is inactive in the project: its bench leaves it out.
    demo = ids.exclude(sku__startswith="BENCH-").exclude(sku="HOO-M")
    demo = list(demo.values_list("pk", flat=True))
    many = list(ids.filter(sku__startswith="BENCH-").values_list("pk", flat=True))
    return demo, many


def sample_order_ids(count: int) -> list[int]:
    from django.db.models import Max, Min
    from shop.models import Order

    bounds = Order.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return []
    span = range(bounds["low"], bounds["high"] + 1)
    candidates = random.Random(1).sample(span, min(len(span), count * 2))  # noqa: S311
    return list(Order.objects.filter(pk__in=candidates).values_list("pk", flat=True)[:count])


def lua_list(values) -> str:
    return "{" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values) + "}"


def prepare(args) -> None:
    from shop.models import Order, Product

    Product.objects.update(stock=STOCK)
    customers = [bench_user(CUSTOMER_NAME.format(n)) for n in range(CUSTOMERS)]
    staff = bench_user(STAFF_NAME, staff=True)
    demo, many = products()
    order_ids = sample_order_ids(ORDER_SAMPLE)
    data = {
        "customer_tokens": [token(user) for user in customers],
        "staff_token": token(staff),
        "demo_products": demo,
        "many_products": many,
        "order_ids": order_ids,
    }
    lines = [
        f"  {key} = {lua_list(value) if isinstance(value, list) else repr(value)},"
        for key, value in data.items()
    ]
    Path(args.out).write_text(
        "-- Written by bench/baseline/jobs.py prepare; bench tokens, do not commit.\n"
        "return {\n" + "\n".join(lines) + "\n}\n"
    )
    emit(
        {
            "orders": Order.objects.count(),
            "products": len(demo) + len(many),
            "customers": len(customers),
            "order_ids": len(order_ids),
        }
    )


def queries(args) -> None:
    """SQL statements of one request of each scenario, as bench/django_jobs.py
    counts the project's: the real Authorization header, no test transaction,
    each request made once before the counted one."""
    from django.test import Client
    from query_count import count_queries
    from shop.models import Order

    customer_token = token(bench_user(CUSTOMER_NAME.format(0)))
    staff_token = token(bench_user(STAFF_NAME, staff=True))
    demo, many = products()
    client = Client()

    def create(product_ids):
        body = json.dumps({"items": [{"product_id": pk, "quantity": 1} for pk in product_ids]})
        return lambda: client.post(
            "/api/v1/orders/",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {customer_token}",
        )

    def get(path):
        return lambda: client.get(path, HTTP_AUTHORIZATION=f"Bearer {staff_token}")

    some_order = Order.objects.order_by("-pk").values_list("pk", flat=True).first()
    requests = {
        "create": create(random.Random().sample(demo, 3)),  # noqa: S311
        "create_many": create(many),
        "detail": get(f"/api/v1/orders/{some_order}/"),
        "list": get("/api/v1/orders/?page_size=20"),
    }
    emit(count_queries(requests))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="job", required=True)
    sub.add_parser("prepare").add_argument("--out", required=True, help="the Lua data file")
    sub.add_parser("queries")
    args = parser.parse_args()

    import django

    django.setup()
    {"prepare": prepare, "queries": queries}[args.job](args)


if __name__ == "__main__":
    main()
