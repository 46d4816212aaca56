import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.models import Max, Min, Sum
from django.utils import timezone

from accounts.models import User
from inventory.models import Product, StockMovement
from inventory.tests.helpers import assert_ledger_explains
from orders.management.commands.seed_demo import (
    CANCEL_WITHOUT_STAFF,
    DEMO_CUSTOMERS,
    DEMO_PRODUCTS,
    EXTRA_CUSTOMER_EMAIL,
    PATHS,
)
from orders.models import Order, OrderEvent, OrderLine
from orders.services import actor_role, order_place
from orders.statuses import HOLDING_STOCK, TRANSITIONS, Actor, OrderStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _debug(settings):
    # seed_demo is a development command: it refuses to run with DEBUG off.
    settings.DEBUG = True


Kind = StockMovement.Kind


def test_seed_demo_loads_products_with_stock_and_customers_who_can_log_in(client):
    call_command("seed_demo", stdout=io.StringIO())
    assert Product.objects.count() == len(DEMO_PRODUCTS)
    for product in Product.objects.all():
        assert_ledger_explains(product)
    assert Product.objects.filter(stock_on_hand__gt=0).count() >= 10
    assert Product.objects.filter(is_active=False).exists()
    customer = User.objects.get(email=DEMO_CUSTOMERS[0][0])
    assert not customer.is_staff
    response = client.post(
        "/api/v1/auth/token/",
        {"email": customer.email, "password": "customer-demo-password"},
        content_type="application/json",
    )
    assert response.status_code == 200


def test_seed_demo_is_safe_to_run_twice():
    call_command("seed_demo", stdout=io.StringIO())
    stock = dict(Product.objects.values_list("sku", "stock_on_hand"))
    call_command("seed_demo", stdout=io.StringIO())
    assert dict(Product.objects.values_list("sku", "stock_on_hand")) == stock
    assert User.objects.count() == len(DEMO_CUSTOMERS)


# --- Demo orders ---------------------------------------------------------------------


def seed(*args):
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def assert_orders_are_whole(staff=None):
    """Every order is priced, has a legal history and a ledger that matches it,
    and every product's stock is what its ledger and the open orders say."""
    now = timezone.now()
    for order in Order.objects.prefetch_related("lines", "events", "stock_movements"):
        lines = list(order.lines.all())
        assert 1 <= len(lines) <= 4
        assert order.currency == settings.CURRENCY
        assert order.total == sum(line.line_total for line in lines)
        for line in lines:
            assert 1 <= line.quantity <= 3
            assert line.line_total == line.unit_price * line.quantity
            assert (line.sku, line.name, line.unit_price) == (
                line.product.sku,
                line.product.name,
                line.product.price,
            )
        events = list(order.events.all())
        created, moves = events[0], events[1:]
        assert (created.type, created.to_status, created.actor_id) == (
            OrderEvent.Type.CREATED,
            OrderStatus.PENDING,
            order.customer_id,
        )
        assert created.created_at == order.created_at
        assert now - timedelta(days=30) <= order.created_at < now
        previous = created
        for move in moves:
            assert move.type == OrderEvent.Type.STATUS_CHANGED
            assert move.from_status == previous.to_status
            assert move.created_at > previous.created_at
            actors, _ = TRANSITIONS[(move.from_status, move.to_status)]
            role = actor_role(order, move.actor) if move.actor else Actor.SYSTEM
            if staff or role != Actor.SYSTEM:
                assert role in actors
            if staff and role == Actor.STAFF:
                assert move.actor == staff
            previous = move
        assert previous.to_status == order.status
        assert previous.created_at == order.updated_at <= now

        # The ledger of the order: reserved for every line, then released or shipped.
        by_kind = {}
        for movement in order.stock_movements.all():
            by_kind.setdefault(movement.kind, {})[movement.product_id] = movement.quantity
        ordered = {line.product_id: line.quantity for line in lines}
        assert by_kind.pop(Kind.RESERVE) == ordered
        if order.status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED):
            assert by_kind == {Kind.SHIP: {pk: -q for pk, q in ordered.items()}}
        elif order.status in (OrderStatus.CANCELLED, OrderStatus.FAILED):
            assert by_kind == {Kind.RELEASE: {pk: -q for pk, q in ordered.items()}}
        else:
            assert by_kind == {}

    held = dict(
        OrderLine.objects.filter(order__status__in=HOLDING_STOCK)
        .values("product")
        .annotate(held=Sum("quantity"))
        .values_list("product", "held")
    )
    for product in Product.objects.all():
        assert_ledger_explains(product)
        assert product.stock_reserved == held.get(product.pk, 0)


def test_seed_demo_orders_are_priced_with_a_legal_history_and_a_ledger_that_explains_stock(
    staff_user,
):
    output = seed("--orders", "30", "--batch-size", "7", "--customers", "3", "--seed", "1")
    assert Order.objects.count() == 30
    assert OrderLine.objects.count() >= 30
    assert "Created 30 demo orders" in output
    statuses = set(Order.objects.values_list("status", flat=True))
    assert {OrderStatus.DELIVERED, OrderStatus.PENDING} <= statuses
    assert len(statuses) >= 4
    # Placed over the last month, not all at once.
    span = Order.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    assert span["last"] - span["first"] > timedelta(days=7)
    # The demo customers and three more, all able to log in with the demo password.
    customers = User.objects.filter(orders__isnull=False).distinct()
    assert set(customers.values_list("email", flat=True)) <= {
        *(email for email, _, _ in DEMO_CUSTOMERS),
        *(EXTRA_CUSTOMER_EMAIL.format(n) for n in (1, 2, 3)),
    }
    assert User.objects.get(email=EXTRA_CUSTOMER_EMAIL.format(3)).check_password(
        "customer-demo-password"
    )
    assert_orders_are_whole(staff=staff_user)
    # Out-of-stock demo products were restocked first, in the ledger too.
    assert StockMovement.objects.filter(kind=Kind.RESTOCK, note="Demo data", order=None).exists()


def test_seed_demo_orders_leave_room_for_real_orders(user):
    seed("--orders", "12", "--seed", "2")
    product = Product.objects.get(sku="STK-PACK")
    order = order_place(customer=user, items=[{"product_id": product.pk, "quantity": 1}])
    assert order.pk > Order.objects.exclude(pk=order.pk).aggregate(last=Max("pk"))["last"]
    assert_ledger_explains(product)


def test_seed_demo_pending_backlog():
    output = seed("--status", "pending", "--orders", "10")
    assert Order.objects.count() == Order.objects.filter(status=OrderStatus.PENDING).count() == 10
    assert OrderEvent.objects.count() == 10
    assert "10 pending" in output
    assert_orders_are_whole()


def test_seed_demo_without_staff_lets_customers_cancel_their_own_pending_orders():
    seed("--status", "cancelled", "--orders", "5")
    moves = OrderEvent.objects.filter(type=OrderEvent.Type.STATUS_CHANGED)
    assert moves.count() == 5
    assert all(
        (move.from_status, move.actor_id) == (OrderStatus.PENDING, move.order.customer_id)
        for move in moves.select_related("order")
    )
    assert_orders_are_whole()


def test_seed_demo_top_up_only_fills_up_to_the_target():
    seed("--orders", "20", "--top-up")
    assert Order.objects.count() == 20
    stock = list(Product.objects.values_list("sku", "stock_on_hand", "stock_reserved"))
    output = seed("--orders", "20", "--top-up")
    assert "none created" in output
    assert Order.objects.count() == 20
    assert list(Product.objects.values_list("sku", "stock_on_hand", "stock_reserved")) == stock
    seed("--orders", "25", "--top-up")
    assert Order.objects.count() == 25
    assert_orders_are_whole()


def test_seed_demo_paths_are_legal_moves():
    for status, paths in PATHS.items():
        for path in [*paths, CANCEL_WITHOUT_STAFF] if status == OrderStatus.CANCELLED else paths:
            current = OrderStatus.PENDING
            for from_status, to_status, actor in path:
                assert from_status == current
                assert actor in TRANSITIONS[(from_status, to_status)][0]
                current = to_status
            assert current == status


@pytest.mark.parametrize("args", [("--orders", "-1"), ("--top-up",), ("--status", "pending")])
def test_seed_demo_refuses_options_that_make_no_sense(args):
    with pytest.raises(CommandError):
        seed(*args)
    assert not Order.objects.exists()


def test_the_report_counts_every_demo_customer_the_orders_go_to():
    out = seed("--orders", "20", "--top-up")
    assert User.objects.filter(is_staff=False).count() == 10  # 2 demo customers, 8 more
    assert "10 new customers, 10 demo customers in all" in out
    assert "0 new customers, 10 demo customers in all" in seed("--orders", "20", "--top-up")


def test_seed_demo_refuses_to_run_with_debug_off_unless_told(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="not-production"):
        seed()
    assert not Product.objects.exists()
    seed("--i-know-this-is-not-production")
    assert Product.objects.exists()
