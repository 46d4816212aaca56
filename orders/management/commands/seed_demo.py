"""Demo data: products, customers and, with `--orders N`, a history of orders.

The orders are written in bulk, a few thousand per transaction, but leave the
database exactly as real orders would: lines priced from the catalogue, an
event for every status move along a legal path of `orders.statuses.TRANSITIONS`,
and a stock ledger that explains every product's on-hand and reserved figures
(a `restock` covers what the orders take, then reserve, release and ship
movements as the orders' histories imply).
"""

import json
import random
import sys
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import CommandError
from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone
from tqdm import tqdm

from accounts.models import User
from core.commands import DevelopmentCommand
from inventory import services as inventory
from inventory.cache import products_changed
from inventory.locks import lock_products
from inventory.models import MAX_STOCK, Product, StockMovement
from orders.models import Order, OrderEvent, OrderLine
from orders.statuses import HOLDING_STOCK, TRANSITIONS, Actor, OrderStatus, StockEffect

# sku, name, price, stock on hand, low-stock threshold, active
DEMO_PRODUCTS = [
    ("MUG-001", "Enamel mug, blue", "12.50", 120, 10, True),
    ("MUG-002", "Enamel mug, red", "12.50", 8, 10, True),
    ("TEE-S", "Logo T-shirt, S", "19.99", 40, 5, True),
    ("TEE-M", "Logo T-shirt, M", "19.99", 60, 5, True),
    ("TEE-L", "Logo T-shirt, L", "19.99", 3, 5, True),
    ("CAP-001", "Baseball cap", "15.00", 75, 10, True),
    ("BAG-001", "Canvas tote bag", "9.90", 200, 20, True),
    ("BOT-001", "Steel water bottle", "24.00", 0, 5, True),
    ("NBK-A5", "Notebook A5, dotted", "7.45", 300, 25, True),
    ("PEN-003", "Fountain pen", "39.00", 15, 3, True),
    ("STK-PACK", "Sticker pack", "3.99", 500, 50, True),
    ("HOO-M", "Hoodie, M (discontinued)", "49.00", 2, 0, False),
]

DEMO_CUSTOMERS = [
    ("customer@example.com", "Casey", "Customer"),
    ("shopper@example.com", "Sam", "Shopper"),
]
DEMO_CUSTOMER_PASSWORD = "customer-demo-password"  # noqa: S105 (demo data)

# Extra customers for `--orders`: demo.customer001@example.com and so on, with
# the demo customers' password.
EXTRA_CUSTOMER_EMAIL = "demo.customer{:03d}@example.com"
EXTRA_NAMES = [
    ("Alex", "Archer"),
    ("Blair", "Baker"),
    ("Charlie", "Chen"),
    ("Dana", "Diaz"),
    ("Eli", "Evans"),
    ("Frankie", "Fischer"),
    ("Gale", "Garcia"),
    ("Harper", "Holm"),
    ("Indy", "Ito"),
    ("Jordan", "Jensen"),
]
STREETS = ["Harbour Road", "Mill Lane", "Station Street", "Elm Avenue", "Castle Hill"]
TOWNS = ["Springfield", "Riverton", "Lakeside", "Oakham", "Fairview"]

S, A = OrderStatus, Actor

# The share of each status in the default mix, in per cent.
STATUS_MIX = {
    S.DELIVERED: 45,
    S.SHIPPED: 20,
    S.PROCESSING: 10,
    S.PENDING: 10,
    S.CANCELLED: 12,
    S.FAILED: 3,
}
MIX_STATUSES, MIX_WEIGHTS = list(STATUS_MIX), list(STATUS_MIX.values())

# How an order reaches each status: the moves after placement, each as
# (from, to, who). Every move is in the status table for that actor; see the test.
PATHS = {
    S.PENDING: [()],
    S.PROCESSING: [((S.PENDING, S.PROCESSING, A.SYSTEM),)],
    S.SHIPPED: [((S.PENDING, S.PROCESSING, A.SYSTEM), (S.PROCESSING, S.SHIPPED, A.STAFF))],
    S.DELIVERED: [
        (
            (S.PENDING, S.PROCESSING, A.SYSTEM),
            (S.PROCESSING, S.SHIPPED, A.STAFF),
            (S.SHIPPED, S.DELIVERED, A.STAFF),
        )
    ],
    S.CANCELLED: [
        ((S.PENDING, S.CANCELLED, A.STAFF),),
        ((S.PENDING, S.PROCESSING, A.SYSTEM), (S.PROCESSING, S.CANCELLED, A.STAFF)),
    ],
    S.FAILED: [
        ((S.PENDING, S.FAILED, A.SYSTEM),),
        ((S.PENDING, S.PROCESSING, A.SYSTEM), (S.PROCESSING, S.FAILED, A.SYSTEM)),
    ],
}
# Without a staff user a cancellation is the customer's own, while still pending.
CANCEL_WITHOUT_STAFF = ((S.PENDING, S.CANCELLED, A.OWNER),)

# Seconds from the previous step to a move into this status (shortened for
# orders placed too recently to have taken that long).
DELAYS = {
    S.PROCESSING: (5, 30 * 60),
    S.SHIPPED: (2 * 3600, 2 * 86400),
    S.DELIVERED: (86400, 5 * 86400),
    S.CANCELLED: (60, 86400),
    S.FAILED: (1, 10 * 60),
}
SPREAD = 30 * 86400  # orders are placed over the last 30 days
NEWEST = 60  # and at least a minute ago

CENT = Decimal("0.01")
Kind = StockMovement.Kind
ORDER_FIELDS = (
    "id",
    "customer",
    "status",
    "total",
    "currency",
    "shipping_address",
    "notes",
    "created_at",
    "updated_at",
    "event_sequence",
)
LINE_FIELDS = ("order", "product", "sku", "name", "unit_price", "quantity", "line_total")
EVENT_FIELDS = ("order", "type", "from_status", "to_status", "actor", "note", "data", "created_at")
MOVEMENT_FIELDS = ("product", "kind", "quantity", "order", "actor", "note", "created_at")
STOCK_KIND = {StockEffect.RELEASE: Kind.RELEASE, StockEffect.CONSUME: Kind.SHIP}
CREATED, MOVED = OrderEvent.Type.CREATED, OrderEvent.Type.STATUS_CHANGED


class Command(DevelopmentCommand):
    help = (
        "Load demo products and customers (safe to run twice: existing ones are kept); "
        "with --orders N, also N orders with their lines, events and stock movements."
    )

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, metavar="N", help="Also create N demo orders.")
        parser.add_argument(
            "--top-up",
            action="store_true",
            help="Create only as many orders as it takes to have N orders in all.",
        )
        parser.add_argument(
            "--status",
            choices=OrderStatus.values,
            help="Make every order this status (default: a realistic mix).",
        )
        parser.add_argument(
            "--customers",
            type=int,
            default=8,
            metavar="K",
            help="Spread the orders over the demo customers and K more (default 8).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=5000,
            help="Orders written per transaction (default 5000).",
        )
        parser.add_argument("--seed", type=int, help="Random seed, for repeatable data.")

    def handle(self, *args, orders, top_up, status, customers, batch_size, seed, **options):
        if orders is None and (top_up or status):
            raise CommandError("--top-up and --status go with --orders N.")
        if (orders or 0) < 0 or customers < 0 or batch_size < 1:
            raise CommandError("--orders and --customers must be >= 0, --batch-size >= 1.")
        products = self.seed_products()
        new_customers = self.seed_customers()
        # The orders go to the demo customers and `customers` more.
        customer_ids, new_extra = self.seed_extra_customers(customers if orders else 0)
        self.stdout.write(
            f"Demo data ready: {products} new products, {new_customers + new_extra} new "
            f"customers, {len(customer_ids)} demo customers in all "
            f"(customer login: {DEMO_CUSTOMERS[0][0]} / {DEMO_CUSTOMER_PASSWORD})."
        )
        if not orders:
            return
        count = orders
        if top_up:
            count = max(0, orders - Order.objects.count())
            if not count:
                self.stdout.write(f"Already {orders} or more orders: none created.")
                return
        seeder = OrderSeeder(
            customer_ids=customer_ids,
            product_ids=list(
                Product.objects.filter(sku__in=[p[0] for p in DEMO_PRODUCTS], is_active=True)
                .order_by("pk")
                .values_list("pk", flat=True)
            ),
            staff_id=User.objects.filter(is_staff=True, is_active=True)
            .order_by("pk")
            .values_list("pk", flat=True)
            .first(),
            status=status,
            rng=random.Random(seed),  # noqa: S311 (demo data, not secrets)
        )
        if not seeder.product_ids:
            raise CommandError("No active demo products to order.")
        # Drawn on the terminal only (tqdm stays quiet when stderr is not a TTY).
        with tqdm(total=count, unit="order", file=sys.stderr, disable=None) as bar:
            done = 0
            while done < count:
                size = min(batch_size, count - done)
                seeder.seed_batch(size)
                done += size
                bar.update(size)
        by_status = ", ".join(
            f"{seeder.created[value]} {value}"
            for value in OrderStatus.values
            if value in seeder.created
        )
        self.stdout.write(
            f"Created {count} demo orders: {by_status}; "
            f"restocked {seeder.restocked} units to cover them."
        )
        refresh_statistics()

    @transaction.atomic
    def seed_products(self) -> int:
        existing = set(Product.objects.values_list("sku", flat=True))
        created = 0
        for sku, name, price, stock, threshold, active in DEMO_PRODUCTS:
            if sku in existing:
                continue
            product = inventory.product_create(
                sku=sku,
                name=name,
                price=Decimal(price),
                description=f"Demo product: {name.lower()}.",
                is_active=active,
                low_stock_threshold=threshold,
            )
            if stock:
                inventory.stock_adjust(
                    product=product, delta=stock, reason="restock", actor=None, note="Demo data"
                )
            created += 1
        return created

    def seed_customers(self) -> int:
        created = 0
        for email, first_name, last_name in DEMO_CUSTOMERS:
            if User.objects.filter(email=email).exists():
                continue
            User.objects.create_user(
                email, DEMO_CUSTOMER_PASSWORD, first_name=first_name, last_name=last_name
            )
            created += 1
        return created

    def seed_extra_customers(self, count: int) -> tuple[list[int], int]:
        """Make sure the first `count` extra customers exist; return the ids of
        the customers demo orders go to, and how many were created now."""
        extra = {
            EXTRA_CUSTOMER_EMAIL.format(n): EXTRA_NAMES[(n - 1) % len(EXTRA_NAMES)]
            for n in range(1, count + 1)
        }
        emails = [*(email for email, _, _ in DEMO_CUSTOMERS), *extra]
        existing = set(User.objects.filter(email__in=extra).values_list("email", flat=True))
        created = len(extra) - len(existing)
        if created:
            password = make_password(DEMO_CUSTOMER_PASSWORD)  # hashed once, for all of them
            User.objects.bulk_create(
                User(email=email, password=password, first_name=first, last_name=last)
                for email, (first, last) in extra.items()
                if email not in existing
            )
        ids = list(
            User.objects.filter(email__in=emails).order_by("pk").values_list("pk", flat=True)
        )
        return ids, created


class Plan(NamedTuple):
    """One demo order, decided but not yet written."""

    customer_id: int
    placed: datetime
    status: str
    lines: list  # (product, quantity, line total)
    steps: list  # (from status, to status, actor id or None, at), after placement


class OrderSeeder:
    """Writes demo orders batch by batch; each batch is one transaction."""

    def __init__(self, *, customer_ids, product_ids, staff_id, status, rng):
        self.customer_ids = customer_ids
        self.product_ids = product_ids
        self.staff_id = staff_id
        self.status = status
        self.rng = rng
        self.addresses = {
            pk: f"{rng.randint(1, 200)} {rng.choice(STREETS)}, {rng.choice(TOWNS)}"
            for pk in customer_ids
        }
        self.created = Counter()
        self.restocked = 0

    @transaction.atomic
    def seed_batch(self, size: int) -> None:
        products = [p for p in lock_products(self.product_ids).values() if p.is_active]
        if not products:
            raise CommandError("No active demo products to order.")
        now = timezone.now()
        plans = [self.plan(products, now) for _ in range(size)]
        order_ids = allocate_ids(Order, size)
        orders = []
        for order_id, plan in zip(order_ids, plans, strict=True):
            orders.append(
                (
                    order_id,
                    plan.customer_id,
                    plan.status,
                    sum((total for _, _, total in plan.lines), Decimal("0.00")),
                    settings.CURRENCY,
                    self.addresses[plan.customer_id],
                    "",
                    plan.placed,
                    plan.steps[-1][3] if plan.steps else plan.placed,
                    # Demo history writes no outbox events; an order's next
                    # event follows its history's numbering.
                    1 + len(plan.steps),
                )
            )
        insert_rows(Order, ORDER_FIELDS, orders)

        lines, events, movements = [], [], []
        # What the batch does to each product: reserved at some time, shipped, still held.
        reserved, shipped, held = Counter(), Counter(), Counter()
        for order_id, plan in zip(order_ids, plans, strict=True):
            events.append((order_id, CREATED, "", S.PENDING, plan.customer_id, "", {}, plan.placed))
            for product, quantity, total in plan.lines:
                lines.append(
                    (
                        order_id,
                        product.pk,
                        product.sku,
                        product.name,
                        product.price,
                        quantity,
                        total,
                    )
                )
                movements.append(
                    (
                        product.pk,
                        Kind.RESERVE,
                        quantity,
                        order_id,
                        plan.customer_id,
                        "",
                        plan.placed,
                    )
                )
                reserved[product.pk] += quantity
                if plan.status in HOLDING_STOCK:
                    held[product.pk] += quantity
            for from_status, to_status, actor_id, at in plan.steps:
                events.append((order_id, MOVED, from_status, to_status, actor_id, "", {}, at))
                kind = STOCK_KIND.get(TRANSITIONS[(from_status, to_status)][1])
                if kind is None:
                    continue
                note = f"Order {to_status}"
                for product, quantity, _ in plan.lines:
                    movements.append((product.pk, kind, -quantity, order_id, actor_id, note, at))
                    if kind == Kind.SHIP:
                        shipped[product.pk] += quantity
            self.created[plan.status] += 1

        # Restock what the orders reserve beyond what is available, dated just
        # before the first of them: no order ever reserved more than there was.
        restock = {}
        for product in products:
            need = reserved[product.pk] - product.stock_available
            if need > 0:
                if product.stock_on_hand + need > MAX_STOCK:
                    raise CommandError(f"{product.sku} would exceed {MAX_STOCK} on hand.")
                restock[product.pk] = need
        restocked_at = min(plan.placed for plan in plans) - timedelta(minutes=1)
        insert_rows(
            StockMovement,
            MOVEMENT_FIELDS,
            [
                (pk, Kind.RESTOCK, quantity, None, None, "Demo data", restocked_at)
                for pk, quantity in restock.items()
            ],
        )
        insert_rows(OrderLine, LINE_FIELDS, lines)
        insert_rows(OrderEvent, EVENT_FIELDS, events)
        insert_rows(StockMovement, MOVEMENT_FIELDS, movements)

        # The counters move as the ledger says, one UPDATE per product.
        for product in products:
            on_hand = restock.get(product.pk, 0) - shipped[product.pk]
            if on_hand or held[product.pk]:
                Product.objects.filter(pk=product.pk).update(
                    stock_on_hand=F("stock_on_hand") + on_hand,
                    stock_reserved=F("stock_reserved") + held[product.pk],
                    updated_at=now,
                )
                products_changed([product.pk])
        self.restocked += sum(restock.values())

    def plan(self, products, now) -> Plan:
        """One order's content and history, not yet written."""
        rng = self.rng
        status = self.status or rng.choices(MIX_STATUSES, MIX_WEIGHTS)[0]
        if status == S.CANCELLED and self.staff_id is None:
            path = CANCEL_WITHOUT_STAFF
        else:
            path = rng.choice(PATHS[status])
        customer_id = rng.choice(self.customer_ids)
        placed = now - timedelta(seconds=rng.uniform(NEWEST, SPREAD))
        lines = []
        for product in rng.sample(products, min(rng.randint(1, 4), len(products))):
            quantity = rng.randint(1, 3)
            lines.append((product, quantity, (product.price * quantity).quantize(CENT)))
        delays = [rng.uniform(*DELAYS[to_status]) for _, to_status, _ in path]
        # An order placed recently has moved faster; the last move is still in the past.
        age = (now - placed).total_seconds()
        scale = min(1.0, age * 0.9 / sum(delays)) if delays else 1.0
        actors = {A.OWNER: customer_id, A.STAFF: self.staff_id, A.SYSTEM: None}
        steps, at = [], placed
        for (from_status, to_status, who), delay in zip(path, delays, strict=True):
            at += timedelta(seconds=delay * scale)
            steps.append((from_status, to_status, actors[who], at))
        return Plan(customer_id, placed, status, lines, steps)


def refresh_statistics() -> None:
    """Bring PostgreSQL's planner statistics up to date after a bulk load.
    Autovacuum would, minutes later; until then the planner takes the tables
    for nearly empty and picks plans for that (the processing run's queue
    scan became a sort of every pending order: 2,000 orders/s instead of
    4,000)."""
    if connection.vendor == "postgresql":
        tables = [model._meta.db_table for model in (Order, OrderLine, OrderEvent, StockMovement)]
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {', '.join(tables)}")


def allocate_ids(model, count: int) -> list[int]:
    """Take `count` fresh primary keys for `model`, to insert rows with, in
    the current transaction."""
    quote = connection.ops.quote_name
    table, column = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [quote(table), column, count],
            )
            return [row[0] for row in cursor.fetchall()]
        if connection.vendor == "sqlite":
            # The transaction holds SQLite's write lock (IMMEDIATE mode), so no
            # one else takes these; AUTOINCREMENT never reuses an id.
            cursor.execute(f"SELECT max({quote(column)}) FROM {quote(table)}")  # noqa: S608
            last = cursor.fetchone()[0] or 0
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            last = max(last, row[0] if row else 0)
            return list(range(last + 1, last + 1 + count))
    raise CommandError(f"Seeding orders is not supported on {connection.vendor}.")


def insert_rows(model, field_names, rows) -> None:
    """Insert plain tuples of values into `model`'s table: COPY on PostgreSQL,
    one `executemany` elsewhere. Foreign keys are given as ids, JSON as Python
    values; other values as the column takes them (no model save logic runs)."""
    if not rows:
        return
    fields = [model._meta.get_field(name) for name in field_names]
    convert = {}
    for index, field in enumerate(fields):
        if isinstance(field, models.JSONField):
            convert[index] = json.dumps
        elif isinstance(field, models.DateTimeField) and connection.vendor != "postgresql":
            convert[index] = connection.ops.adapt_datetimefield_value
    if convert:
        rows = (
            tuple(convert[i](value) if i in convert else value for i, value in enumerate(row))
            for row in rows
        )
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(field.column) for field in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",  # noqa: S608 (names from the model)
                list(rows),
            )
