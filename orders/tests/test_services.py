"""The order services: placement, pricing, the status table and its stock
effects, and detail edits (SPEC §6)."""

from collections import deque
from decimal import Decimal

import pytest

from accounts.tests.factories import StaffFactory, UserFactory
from core.exceptions import PermissionRefused
from inventory import services as inventory
from inventory.exceptions import InsufficientStock
from inventory.models import Product, StockMovement
from inventory.tests.factories import ProductFactory
from inventory.tests.helpers import assert_ledger_explains
from orders import services
from orders.exceptions import InvalidTransition, OrderNotEditable
from orders.models import Order, OrderEvent, OrderLine
from orders.statuses import TRANSITIONS, Actor, OrderStatus
from orders.tests.factories import place_order

pytestmark = pytest.mark.django_db

S = OrderStatus
ACTORS = (Actor.OWNER, Actor.STAFF, Actor.SYSTEM)

# The SPEC's table (§6), written out independently of `orders.statuses`.
SPEC_TABLE = {
    (S.PENDING, S.PROCESSING): {Actor.STAFF, Actor.SYSTEM},
    (S.PENDING, S.CANCELLED): {Actor.OWNER, Actor.STAFF},
    (S.PROCESSING, S.CANCELLED): {Actor.STAFF},
    (S.PROCESSING, S.SHIPPED): {Actor.STAFF},
    (S.SHIPPED, S.DELIVERED): {Actor.STAFF},
    (S.PENDING, S.FAILED): {Actor.SYSTEM},
    (S.PROCESSING, S.FAILED): {Actor.SYSTEM},
}

# Every (from, to, actor) the SPEC allows, and every other one of the 6 x 6 x 3:
# both come from SPEC_TABLE, not from the code under test, so the tests below
# check the service against the SPEC (a move the code allowed and the SPEC
# does not would be in REFUSED and fail there).
ALLOWED = sorted(
    (frm, to, actor) for (frm, to), actors in SPEC_TABLE.items() for actor in sorted(actors)
)
REFUSED = sorted(
    (frm, to, actor)
    for frm in S.values
    for to in S.values
    for actor in ACTORS
    if actor not in SPEC_TABLE.get((frm, to), ())
)


def stock(product) -> tuple[int, int]:
    product.refresh_from_db()
    return product.stock_on_hand, product.stock_reserved


def shortest_legal_path(to_status: str) -> list[tuple[str, str]]:
    """The moves (to_status, actor kind) that take a new order to `to_status`,
    following only moves the table allows."""
    queue = deque([(S.PENDING.value, [])])
    seen = {S.PENDING.value}
    while queue:
        status, path = queue.popleft()
        if status == to_status:
            return path
        for (frm, to), actors in sorted(SPEC_TABLE.items()):
            if frm == status and to not in seen:
                seen.add(to)
                queue.append((to, [*path, (to, sorted(actors)[0])]))
    raise AssertionError(f"No legal path reaches {to_status}")


class Scene:
    """An order of 3 of `a` and 2 of `b` (10 of each in stock), its owner, a
    staff member, and another customer."""

    def __init__(self):
        self.owner = UserFactory()
        self.staff = StaffFactory()
        self.stranger = UserFactory()
        self.a = ProductFactory(stock=10)
        self.b = ProductFactory(stock=10)
        self.order = place_order(self.owner, (self.a, 3), (self.b, 2), actor=self.owner)
        self.quantities = {self.a.pk: 3, self.b.pk: 2}

    def user(self, actor_kind):
        return {Actor.OWNER: self.owner, Actor.STAFF: self.staff, Actor.SYSTEM: None}[actor_kind]

    def move(self, to_status, actor_kind):
        return services.order_transition(
            order=self.order, to_status=to_status, actor=self.user(actor_kind)
        )

    def bring_to(self, status):
        for to_status, actor_kind in shortest_legal_path(status):
            self.move(to_status, actor_kind)
        self.order.refresh_from_db()
        assert self.order.status == status

    def snapshot(self):
        order = Order.objects.get(pk=self.order.pk)
        return {
            "order": (order.status, order.total, order.shipping_address, order.notes),
            "stock": (stock(self.a), stock(self.b)),
            "events": list(OrderEvent.objects.filter(order=order).values_list("pk", flat=True)),
            "movements": list(StockMovement.objects.values_list("pk", flat=True)),
        }


@pytest.fixture
def scene():
    return Scene()


# --- The table --------------------------------------------------------------------


def test_status_table_is_the_one_the_spec_describes():
    assert {move: set(actors) for move, (actors, _) in TRANSITIONS.items()} == SPEC_TABLE


def test_the_spec_table_allows_nine_moves_and_refuses_the_other_99():
    # A check of the test data itself: 9 (move, actor) pairs in SPEC §6's
    # table, and 6 statuses x 6 statuses x 3 actors in all.
    assert len(ALLOWED) == 9
    assert len(REFUSED) == 6 * 6 * 3 - 9
    assert not set(ALLOWED) & set(REFUSED)


# --- Placing and pricing ----------------------------------------------------------


def test_prices_are_exact_decimal_arithmetic():
    customer = UserFactory()
    pen = ProductFactory(price=Decimal("19.99"), stock=10)
    clip = ProductFactory(price=Decimal("0.10"), stock=10)
    order = place_order(customer, (pen, 3), (clip, 2))

    order = Order.objects.get(pk=order.pk)
    assert order.total == Decimal("60.17")
    assert isinstance(order.total, Decimal)
    assert order.total.as_tuple().exponent == -2
    lines = {line.sku: line for line in order.lines.all()}
    assert lines[pen.sku].line_total == Decimal("59.97")
    assert lines[clip.sku].line_total == Decimal("0.20")
    for line in lines.values():
        assert isinstance(line.line_total, Decimal) and isinstance(line.unit_price, Decimal)
        assert line.line_total.as_tuple().exponent == -2
        assert line.unit_price.as_tuple().exponent == -2


def test_a_sum_that_floats_get_wrong_is_exact():
    # 0.1 + 0.2 != 0.3 in binary floating point.
    customer = UserFactory()
    a = ProductFactory(price=Decimal("0.10"), stock=5)
    b = ProductFactory(price=Decimal("0.20"), stock=5)
    order = place_order(customer, (a, 1), (b, 1))
    assert order.total == Decimal("0.30")
    assert Order.objects.get(pk=order.pk).total == Decimal("0.30")


def test_the_returned_order_carries_the_same_total_as_the_stored_one():
    product = ProductFactory(price=Decimal("12.50"), stock=10)
    order = place_order(UserFactory(), (product, 2))
    assert order.total == Decimal("25.00")
    assert order.total.as_tuple().exponent == -2
    assert Order.objects.get(pk=order.pk).total == order.total


def test_lines_keep_the_sku_name_and_price_of_the_moment_of_placing():
    product = ProductFactory(sku="MUG-1", name="Mug", price=Decimal("12.50"), stock=10)
    order = place_order(UserFactory(), (product, 2))

    inventory.product_update(
        product=product, data={"price": Decimal("99.00"), "name": "Golden mug", "sku": "MUG-2"}
    )

    line = OrderLine.objects.get(order=order)
    assert (line.sku, line.name, line.unit_price, line.line_total, line.quantity) == (
        "MUG-1",
        "Mug",
        Decimal("12.50"),
        Decimal("25.00"),
        2,
    )
    assert line.product_id == product.pk
    assert Order.objects.get(pk=order.pk).total == Decimal("25.00")


def test_placing_reserves_every_line_and_writes_a_created_event():
    customer = UserFactory()
    a, b = ProductFactory(stock=10), ProductFactory(stock=4)
    order = place_order(customer, (a, 3), (b, 4), actor=customer, shipping_address="1 Main St")

    assert (order.status, order.customer, order.shipping_address) == (
        S.PENDING,
        customer,
        "1 Main St",
    )
    assert stock(a) == (10, 3)
    assert stock(b) == (4, 4)
    events = list(order.events.all())
    assert [(e.type, e.from_status, e.to_status, e.actor) for e in events] == [
        (OrderEvent.Type.CREATED, "", S.PENDING, customer)
    ]
    reserves = StockMovement.objects.filter(order=order, kind=StockMovement.Kind.RESERVE)
    assert sorted(reserves.values_list("product_id", "quantity", "actor")) == [
        (a.pk, 3, customer.pk),
        (b.pk, 4, customer.pk),
    ]
    assert_ledger_explains(a)
    assert_ledger_explains(b)


def test_not_enough_stock_on_one_line_places_nothing_and_reserves_nothing():
    customer = UserFactory()
    a, b = ProductFactory(stock=10), ProductFactory(stock=1)
    with pytest.raises(InsufficientStock) as raised:
        place_order(customer, (a, 3), (b, 2))
    assert raised.value.attr == "items.1.quantity"
    assert b.sku in raised.value.detail
    assert not Order.objects.exists()
    assert not OrderLine.objects.exists()
    assert not OrderEvent.objects.exists()
    assert not StockMovement.objects.filter(kind=StockMovement.Kind.RESERVE).exists()
    assert (stock(a), stock(b)) == ((10, 0), (1, 0))


def test_placing_by_staff_records_the_staff_member_as_the_actor():
    customer, staff = UserFactory(), StaffFactory()
    order = place_order(customer, (ProductFactory(stock=3), 1), actor=staff)
    assert order.customer == customer
    assert order.events.get().actor == staff


# --- Moving: every combination ----------------------------------------------------


def expected_stock_after(before, quantity, to_status):
    """(on hand, reserved) of one product after moving to `to_status`, per the SPEC."""
    on_hand, reserved = before
    if to_status in (S.CANCELLED, S.FAILED):
        return on_hand, reserved - quantity
    if to_status == S.SHIPPED:
        return on_hand - quantity, reserved - quantity
    return on_hand, reserved


@pytest.mark.parametrize(("from_status", "to_status", "actor_kind"), ALLOWED)
def test_every_allowed_move_succeeds_with_its_stock_effect(
    scene, from_status, to_status, actor_kind
):
    scene.bring_to(from_status)
    before = {p.pk: stock(p) for p in (scene.a, scene.b)}
    events_before = scene.order.events.count()

    order = scene.move(to_status, actor_kind)

    assert order.status == to_status
    assert Order.objects.get(pk=order.pk).status == to_status
    for product in (scene.a, scene.b):
        assert stock(product) == expected_stock_after(
            before[product.pk], scene.quantities[product.pk], to_status
        ), product.sku
        assert_ledger_explains(product)
    assert scene.order.events.count() == events_before + 1
    event = scene.order.events.last()
    assert (event.type, event.from_status, event.to_status, event.actor) == (
        OrderEvent.Type.STATUS_CHANGED,
        from_status,
        to_status,
        scene.user(actor_kind),
    )


@pytest.mark.parametrize(("from_status", "to_status", "actor_kind"), REFUSED)
def test_every_other_move_is_refused_and_changes_nothing(scene, from_status, to_status, actor_kind):
    scene.bring_to(from_status)
    before = scene.snapshot()

    with pytest.raises(InvalidTransition):
        scene.move(to_status, actor_kind)

    assert scene.snapshot() == before
    assert_ledger_explains(scene.a)
    assert_ledger_explains(scene.b)


def test_the_ledger_explains_the_stock_along_a_whole_life(scene):
    for to_status, actor_kind in [(S.PROCESSING, Actor.SYSTEM), (S.SHIPPED, Actor.STAFF)]:
        scene.move(to_status, actor_kind)
        assert_ledger_explains(scene.a)
        assert_ledger_explains(scene.b)
    scene.move(S.DELIVERED, Actor.STAFF)
    assert stock(scene.a) == (7, 0)
    assert stock(scene.b) == (8, 0)
    kinds = list(
        StockMovement.objects.filter(order=scene.order, product=scene.a).values_list(
            "kind", "quantity"
        )
    )
    assert kinds == [("reserve", 3), ("ship", -3)]


def test_a_refused_move_explains_itself():
    scene = Scene()
    with pytest.raises(InvalidTransition) as raised:
        scene.move(S.SHIPPED, Actor.STAFF)
    assert raised.value.status_code == 409
    assert raised.value.code == "invalid_transition"
    assert "pending" in raised.value.detail and "shipped" in raised.value.detail


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [(S.PENDING, S.CANCELLED), (S.PENDING, S.PROCESSING), (S.SHIPPED, S.DELIVERED)],
)
def test_a_customer_who_is_not_the_owner_cannot_move_the_order(scene, from_status, to_status):
    scene.bring_to(from_status)
    before = scene.snapshot()
    with pytest.raises(PermissionRefused):
        services.order_transition(order=scene.order, to_status=to_status, actor=scene.stranger)
    assert scene.snapshot() == before


def test_a_customer_who_is_not_the_owner_cannot_cancel(scene):
    before = scene.snapshot()
    with pytest.raises(PermissionRefused):
        services.order_cancel(order=scene.order, actor=scene.stranger)
    assert scene.snapshot() == before


def test_cancel_records_the_reason_on_the_event(scene):
    services.order_cancel(order=scene.order.pk, actor=scene.owner, reason="Changed my mind")
    event = scene.order.events.last()
    assert (event.to_status, event.note, event.actor) == (
        S.CANCELLED,
        "Changed my mind",
        scene.owner,
    )
    assert stock(scene.a) == (10, 0)


def test_a_second_cancel_is_refused_and_releases_nothing_more(scene):
    services.order_cancel(order=scene.order, actor=scene.owner)
    before = scene.snapshot()
    with pytest.raises(InvalidTransition):
        services.order_cancel(order=scene.order, actor=scene.staff)
    assert scene.snapshot() == before
    assert (
        StockMovement.objects.filter(order=scene.order, kind=StockMovement.Kind.RELEASE).count()
        == 2  # one per product
    )


# --- Details ----------------------------------------------------------------------


def test_owner_edits_address_and_notes_while_pending(scene):
    order = services.order_update_details(
        order=scene.order, actor=scene.owner, shipping_address="2 High St", notes="Ring twice"
    )
    stored = Order.objects.get(pk=order.pk)
    assert (stored.shipping_address, stored.notes) == ("2 High St", "Ring twice")
    event = stored.events.last()
    assert (event.type, event.actor, event.data) == (
        OrderEvent.Type.UPDATED,
        scene.owner,
        {"fields": ["notes", "shipping_address"]},
    )
    assert stored.status == S.PENDING


def test_an_edit_of_one_field_leaves_the_other_alone_and_records_only_it(scene):
    services.order_update_details(order=scene.order, actor=scene.owner, notes="Leave at door")
    services.order_update_details(order=scene.order, actor=scene.owner, shipping_address="3 Elm")
    stored = Order.objects.get(pk=scene.order.pk)
    assert (stored.shipping_address, stored.notes) == ("3 Elm", "Leave at door")
    assert [e.data for e in stored.events.filter(type=OrderEvent.Type.UPDATED)] == [
        {"fields": ["notes"]},
        {"fields": ["shipping_address"]},
    ]


def test_an_edit_that_changes_nothing_writes_no_event(scene):
    services.order_update_details(order=scene.order, actor=scene.owner, notes="")
    assert not scene.order.events.filter(type=OrderEvent.Type.UPDATED).exists()


@pytest.mark.parametrize("status", [S.PROCESSING, S.SHIPPED, S.DELIVERED, S.CANCELLED, S.FAILED])
def test_owner_cannot_edit_details_once_the_order_has_left_pending(scene, status):
    scene.bring_to(status)
    before = scene.snapshot()
    with pytest.raises(OrderNotEditable) as raised:
        services.order_update_details(
            order=scene.order, actor=scene.owner, shipping_address="Elsewhere"
        )
    assert (raised.value.status_code, raised.value.code) == (403, "permission_denied")
    assert scene.snapshot() == before


@pytest.mark.parametrize("status", list(S.values))
def test_staff_edit_details_at_any_time(scene, status):
    scene.bring_to(status)
    services.order_update_details(
        order=scene.order, actor=scene.staff, shipping_address="Depot 4", notes="Fragile"
    )
    stored = Order.objects.get(pk=scene.order.pk)
    assert (stored.status, stored.shipping_address, stored.notes) == (
        status,
        "Depot 4",
        "Fragile",
    )
    event = stored.events.last()
    assert (event.type, event.actor) == (OrderEvent.Type.UPDATED, scene.staff)


def test_another_customer_cannot_edit_details(scene):
    before = scene.snapshot()
    with pytest.raises(PermissionRefused):
        services.order_update_details(order=scene.order, actor=scene.stranger, notes="Mine now")
    assert scene.snapshot() == before


def test_products_are_untouched_by_detail_edits(scene):
    before = list(Product.objects.order_by("pk").values_list("stock_on_hand", "stock_reserved"))
    services.order_update_details(order=scene.order, actor=scene.staff, notes="x")
    after = list(Product.objects.order_by("pk").values_list("stock_on_hand", "stock_reserved"))
    assert after == before
