"""On PostgreSQL a placement writes in one statement (orders.services._place
with ONE_STATEMENT_WRITES, inventory.services.stock_reserve_statements); the
plain ORM path is the reference. Hypothesis places random carts — any products,
inactive and missing ones, quantities past the stock and the per-line cap,
low-stock thresholds crossed or not, by the customer or by staff — through
both paths from the same state and requires the same outcome: the same
refusal, or the same rows in every table the placement writes (orders,
lines, ledger, history, outbox, product counters), ids and times aside."""

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.tests.factories import StaffFactory, UserFactory
from core.models import Event
from inventory.models import Product, StockMovement
from inventory.tests.factories import ProductFactory
from orders import services
from orders.models import Order, OrderEvent, OrderLine
from orders.representation import order_data

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PRODUCTS = 6
TIMES = {"created_at", "updated_at"}


def rows(model, after: int, exclude=(), **filters) -> list[dict]:
    found = model.objects.filter(pk__gt=after, **filters).order_by("pk").values()
    return [{k: v for k, v in row.items() if k not in {"id", *exclude}} for row in found]


def timeless(value):
    """`value` without its times (they differ by run)."""
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


def order_shown(data: dict) -> dict:
    return timeless({**data, "id": "ORDER"})


def order_rows(found: list[dict], order_id: int) -> list[dict]:
    """Rows with the order's id (it differs by run) as "ORDER"."""
    marked = []
    for row in found:
        row = dict(row)
        if row.get("order_id") == order_id:
            row["order_id"] = "ORDER"
        if row.get("aggregate") == "order" and row["aggregate_id"] == order_id:
            row["aggregate_id"] = "ORDER"
            row["data"] = {**row["data"], "order": order_shown(row["data"]["order"])}
        marked.append(timeless(row))
    return marked


def outcome(one_statement: bool, monkeypatch, customer, actor, items) -> object:
    """What placing `items` does from the current state, rolled back after."""
    monkeypatch.setattr(services, "ONE_STATEMENT_WRITES", one_statement)
    marks = {
        m: m.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        for m in (Order, OrderLine, StockMovement, OrderEvent, Event)
    }
    with transaction.atomic():
        try:
            order = services.order_place(customer=customer, items=items, actor=actor, notes="n")
        except Exception as error:  # the refusal is the outcome
            result = (
                "refused",
                type(error),
                str(error),
                getattr(error, "attr", None),
                getattr(error, "code", None),
            )
        else:
            shown = order_data(order)
            order.refresh_from_db()
            result = {
                "returned": order_shown(shown),
                "stored": order_shown(order_data(services_order(order.pk))),
                "orders": rows(Order, marks[Order], TIMES),
                "lines": order_rows(rows(OrderLine, marks[OrderLine]), order.pk),
                "ledger": order_rows(rows(StockMovement, marks[StockMovement]), order.pk),
                "history": order_rows(rows(OrderEvent, marks[OrderEvent]), order.pk),
                "outbox": order_rows(rows(Event, marks[Event], {"uid"}), order.pk),
                "products": list(
                    Product.objects.order_by("pk").values(
                        "pk", "stock_on_hand", "stock_reserved", "is_active"
                    )
                ),
                "announced": len(connection.run_on_commit),
            }
        transaction.set_rollback(True)
    return result


def services_order(pk):
    from orders.selectors import orders_with_lines

    return orders_with_lines().get(pk=pk)


@pytest.fixture
def shop(db):
    products = [
        ProductFactory(stock=stock, low_stock_threshold=threshold)
        for stock, threshold in [(5, 2), (50, 45), (1, 0), (200, 0), (10, 9), (3, 1)]
    ]
    Product.objects.filter(pk=products[-1].pk).update(is_active=False)
    return {
        "products": [p.pk for p in products],
        "customer": UserFactory(),
        "staff": StaffFactory(),
    }


cart = st.lists(
    st.tuples(st.integers(0, PRODUCTS), st.integers(1, 120)),  # index PRODUCTS: no such product
    min_size=1,
    max_size=PRODUCTS,
    unique_by=lambda line: line[0],
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=cart, by_staff=st.booleans())
def test_one_statement_placement_equals_the_plain_path(shop, monkeypatch, lines, by_staff):
    ids = shop["products"] + [10**9]
    items = [{"product_id": ids[index], "quantity": quantity} for index, quantity in lines]
    actor = shop["staff"] if by_staff else shop["customer"]
    fast = outcome(True, monkeypatch, shop["customer"], actor, items)
    plain = outcome(False, monkeypatch, shop["customer"], actor, items)
    assert fast == plain


def test_the_one_statement_path_sends_four_statements_fewer(shop, monkeypatch):
    from django.test.utils import CaptureQueriesContext

    items = [{"product_id": pk, "quantity": 1} for pk in shop["products"][:3]]
    counts = {}
    for one_statement in (True, False):
        monkeypatch.setattr(services, "ONE_STATEMENT_WRITES", one_statement)
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            services.order_place(customer=shop["customer"], items=items, actor=shop["customer"])
            transaction.set_rollback(True)
        counts[one_statement] = len(queries)
    assert counts[True] == counts[False] - 4
