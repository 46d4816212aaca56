"""Order services: the only code that creates orders or changes them.

Placing an order prices it from the catalogue and reserves its stock in one
transaction. Every status move goes through `order_transition`, which takes
the order's row lock, checks the move against `orders.statuses.TRANSITIONS`,
applies its stock effect through the inventory services and writes an event;
two racing moves of one order therefore act one after the other, and the
second sees the first's result.
"""

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import F, prefetch_related_objects
from django.utils import timezone

from accounts.models import User
from core.db import insert_statement
from core.events import announce_after_commit, event, events_record
from core.exceptions import DomainError, PermissionRefused
from core.models import Event
from core.permissions import staff_has_perm
from inventory import services as inventory
from inventory.exceptions import InsufficientStock
from inventory.locks import lock_products

from . import cache, metrics
from .exceptions import (
    InvalidOrder,
    InvalidTransition,
    OrderLimitExceeded,
    OrderNotEditable,
    TooManyOpenOrders,
)
from .models import MAX_LINES, MAX_QUANTITY, Order, OrderEvent, OrderLine
from .representation import CENT, order_data
from .statuses import HOLDING_STOCK, TRANSITIONS, Actor, OrderStatus, StockEffect

# The permissions of the order rules (declared on `Order.Meta.permissions`
# and Django's own), checked here so the API, the admin and the tasks agree.
MOVE_ORDER = "orders.move_order"
CHANGE_ORDER = "orders.change_order"
PLACE_FOR_OTHERS = "orders.add_order"


def can_move_orders(user) -> bool:
    """Staff who may move any order along the status table."""
    return staff_has_perm(user, MOVE_ORDER)


def actor_role(order: Order, actor) -> str:
    """How `actor` (a user, or None for the system) stands towards a move of
    `order`: the system, staff who may move orders, or the owner. Anyone
    else is refused (403)."""
    if actor is None:
        return Actor.SYSTEM
    if can_move_orders(actor):
        return Actor.STAFF
    if actor.pk == order.customer_id:
        return Actor.OWNER
    raise PermissionRefused(
        f"Only the customer who placed an order or staff with {MOVE_ORDER} may move it."
    )


# --- Placing ----------------------------------------------------------------------


def _check_items(items: Sequence[Mapping]) -> None:
    if not items:
        raise InvalidOrder("An order needs at least one item.", attr="items", code="empty")
    if len(items) > MAX_LINES:
        raise InvalidOrder(
            f"An order has at most {MAX_LINES} items.", attr="items", code="max_length"
        )
    seen = set()
    for index, item in enumerate(items):
        if not 1 <= item["quantity"] <= MAX_QUANTITY:
            raise InvalidOrder(
                f"Order between 1 and {MAX_QUANTITY} of a product.",
                attr=f"items.{index}.quantity",
                code="out_of_range",
            )
        if item["product_id"] in seen:
            raise InvalidOrder(
                "This product is already in the order; order it once with the total quantity.",
                attr=f"items.{index}.product_id",
                code="duplicate",
            )
        seen.add(item["product_id"])


def order_customer_for(*, actor, customer_id: int | None):
    """Whom an order placed by `actor` is for: staff with `orders.add_order`
    may name an active customer; anyone else orders for themselves (a
    `customer_id` is ignored)."""
    if customer_id is None or not staff_has_perm(actor, PLACE_FOR_OTHERS):
        return actor
    customer = User.objects.filter(pk=customer_id, is_active=True).first()
    if customer is None:
        raise InvalidOrder("No active user has this id.", attr="customer_id", code="does_not_exist")
    return customer


def order_place(
    *,
    customer,
    items: Sequence[Mapping],
    shipping_address: str = "",
    notes: str = "",
    actor=None,
) -> Order:
    """Place an order for `customer`: `items` is a list of
    `{"product_id", "quantity"}`. Prices come from the catalogue, and stock is
    reserved for every line or for none (409 `insufficient_stock`).

    A fixed number of statements whatever the number of lines: the products
    are read once, locked (in id order), and both price the lines and carry
    the reservation; lines and ledger rows are inserted in bulk. The order
    comes back with its lines loaded, so it can be shown without a read.

    Every refusal is raised before anything is written. So inside a caller's
    transaction (the idempotent create's) it needs no savepoint: after a
    refusal that transaction is still usable, and an unexpected database
    error marks it for rollback, as it should."""
    if transaction.get_connection().in_atomic_block:
        return _place(customer, items, shipping_address, notes, actor)
    with transaction.atomic():
        return _place(customer, items, shipping_address, notes, actor)


def _check_limits(customer, items: Sequence[Mapping], actor) -> None:
    """A customer ordering for themselves may not take more than
    MAX_UNITS_PER_LINE of a product in one line, nor hold more than
    MAX_OPEN_ORDERS_PER_CUSTOMER orders that reserve stock (pending,
    processing): one account cannot take the whole stock. Staff who may place
    orders for customers (`orders.add_order`) are not limited.

    The customer's row is locked before the count is taken, so concurrent
    placements by one customer count one after the other."""
    if staff_has_perm(actor, PLACE_FOR_OTHERS):
        return
    per_line = settings.MAX_UNITS_PER_LINE
    for index, item in enumerate(items):
        if item["quantity"] > per_line:
            raise OrderLimitExceeded(
                f"At most {per_line} units of a product per order.",
                attr=f"items.{index}.quantity",
            )
    # Lock the customer's row first, then count in a statement of its own: under
    # READ COMMITTED a statement sees the rows committed before it began, so a
    # count taken in the statement that waited for the lock would miss the
    # order whose commit released it.
    # Two plain statements (the ORM would spend more on building them than
    # PostgreSQL on running them; a placement's hottest check).
    connection = transaction.get_connection()
    users, orders = User._meta.db_table, Order._meta.db_table
    holding = sorted(HOLDING_STOCK)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""  # not SQLite
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {users} WHERE id = %s{lock}", [customer.pk])  # noqa: S608
        cursor.execute(
            f"SELECT count(*) FROM {orders} WHERE customer_id = %s "  # noqa: S608
            f"AND status IN ({', '.join(['%s'] * len(holding))})",
            [customer.pk, *holding],
        )
        open_orders = cursor.fetchone()[0]
    if open_orders >= settings.MAX_OPEN_ORDERS_PER_CUSTOMER:
        raise TooManyOpenOrders(
            f"You have {open_orders} orders waiting to ship, the most one account may have; "
            "place more once some have shipped or been cancelled."
        )


def _place(customer, items, shipping_address, notes, actor) -> Order:
    _check_items(items)
    _check_limits(customer, items, actor)
    index_of = {item["product_id"]: index for index, item in enumerate(items)}
    quantities = {item["product_id"]: item["quantity"] for item in items}
    products = lock_products(index_of)
    for product_id, index in index_of.items():
        product = products.get(product_id)
        if product is None or not product.is_active:
            raise InvalidOrder(
                f"Product {product_id} does not exist or is not for sale.",
                attr=f"items.{index}.product_id",
                code="does_not_exist" if product is None else "inactive",
            )
    try:
        inventory.stock_check_reservable(lines=quantities, products=products)
    except InsufficientStock as error:
        error.attr = f"items.{index_of[error.product_id]}.quantity"
        raise

    lines = []
    for item in items:
        product = products[item["product_id"]]
        lines.append(
            OrderLine(
                product=product,
                sku=product.sku,
                name=product.name,
                unit_price=product.price,
                quantity=item["quantity"],
                line_total=(product.price * item["quantity"]).quantize(CENT),
            )
        )
    order = Order(
        customer=customer,
        status=OrderStatus.PENDING,
        total=sum((line.line_total for line in lines), Decimal("0.00")),
        currency=settings.CURRENCY,
        shipping_address=shipping_address,
        notes=notes,
        event_sequence=1,
    )
    # From here on nothing is refused: the writes, all or none.
    with transaction.atomic(savepoint=False):
        connection = transaction.get_connection()
        one_statement = ONE_STATEMENT_WRITES and connection.vendor == "postgresql"
        if one_statement:
            _insert_for_id(order, connection)
            reserve = inventory.stock_reserve_statements(
                order=order, lines=quantities, products=products, actor=actor
            )
        else:
            order.save(force_insert=True)
            inventory.stock_reserve_locked(
                order=order, lines=quantities, products=products, actor=actor
            )
        for line in lines:
            line.order = order
        _attach_lines(order, lines)
        history = OrderEvent(
            order=order, type=OrderEvent.Type.CREATED, to_status=order.status, actor=actor
        )
        # The outbox: the order as placed and any product it brought low.
        events = [
            _order_event(order, Event.Type.ORDER_CREATED),
            *inventory.low_stock_events(products=products.values(), taken=quantities),
        ]
        if one_statement:
            _execute_together(
                connection,
                [
                    *reserve,
                    insert_statement(lines, connection),
                    insert_statement([history], connection),
                    insert_statement(events, connection),
                ],
            )
            announce_after_commit()
        else:
            OrderLine.objects.bulk_create(lines)
            history.save(force_insert=True)
            events_record(events)
        metrics.count_placed()
    return order


# On PostgreSQL a placement's writes after the order's INSERT (the
# reservation's counters and ledger rows, the lines, the history entry, the
# outbox events) go to the database as one statement of data-modifying CTEs
# instead of six: the same rows, a property-based test holds the two paths
# equal (orders/tests/test_place_paths.py).
ONE_STATEMENT_WRITES = True


def _insert_for_id(order: Order, connection) -> None:
    """INSERT `order` as `save()` would, for its id."""
    sql, params = insert_statement([order], connection, returning="id")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        order.pk = cursor.fetchone()[0]
    order._state.adding, order._state.db = False, connection.alias


def _execute_together(connection, statements: list[tuple[str, list]]) -> None:
    """Several data-modifying statements as one (PostgreSQL runs every CTE)."""
    ctes = ", ".join(f"w{n} AS ({sql})" for n, (sql, _) in enumerate(statements))
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {ctes} SELECT 1", [p for _, params in statements for p in params])


def _order_event(order: Order, type: str, data: dict | None = None) -> Event:
    """The outbox event of `order`'s latest change: the order as the API shows
    it (customer and lines loaded), numbered by `order.event_sequence`."""
    return event(
        type,
        aggregate="order",
        aggregate_id=order.pk,
        sequence=order.event_sequence,
        data={**(data or {}), "order": order_data(order)},
    )


def _attach_lines(order: Order, lines: list[OrderLine]) -> None:
    """Hand `order.lines.all()` the lines just written, as `prefetch_related`
    would, so showing the new order reads nothing back."""
    loaded = order.lines.all()
    loaded._result_cache, loaded._prefetch_done = lines, True
    order._prefetched_objects_cache = {"lines": loaded}


# --- Moving -----------------------------------------------------------------------


def _refuse_unless_allowed(from_status: str, to_status: str, role: str) -> str | None:
    """The move's stock effect, or `InvalidTransition` if the status table
    does not let `role` make it."""
    actors, effect = TRANSITIONS.get((from_status, to_status), (frozenset(), None))
    if role not in actors:
        if (from_status, to_status) in TRANSITIONS:
            detail = f"A {from_status} order cannot be moved to {to_status} by {role}."
        else:
            detail = f"A {from_status} order cannot be moved to {to_status}."
        raise InvalidTransition(detail)
    return effect


def _apply_stock_effect(order: Order, effect: str | None, to_status: str, actor) -> None:
    if effect == StockEffect.RELEASE:
        inventory.stock_release(order=order, actor=actor, note=f"Order {to_status}")
    elif effect == StockEffect.CONSUME:
        inventory.stock_consume(order=order, actor=actor, note=f"Order {to_status}")


@transaction.atomic
def order_transition(
    *, order: Order | int, to_status: str, actor, note: str = "", data: dict | None = None
) -> Order:
    """Move an order to `to_status` as `actor` (None: the system).

    Refuses any move not in the status table for this actor (409
    `invalid_transition`). Releases or consumes the order's reserved stock as
    the table says, and records the move as an event. Returns the order as
    it now is."""
    order = (
        Order.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=getattr(order, "pk", order))
    )
    from_status = order.status
    effect = _refuse_unless_allowed(from_status, to_status, actor_role(order, actor))
    _apply_stock_effect(order, effect, to_status, actor)
    order.status = to_status
    order.event_sequence += 1
    order.save(update_fields=["status", "event_sequence", "updated_at"])
    OrderEvent.objects.create(
        order=order,
        type=OrderEvent.Type.STATUS_CHANGED,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        note=note,
        data=data or {},
    )
    cache.orders_changed([order.pk])
    events_record(
        [
            _order_event(
                order, Event.Type.ORDER_STATUS_CHANGED, {"from": from_status, "to": to_status}
            )
        ]
    )
    metrics.count_moved(to_status)
    return order


@transaction.atomic(savepoint=False)  # all or nothing: the caller's savepoint, if any
def order_transition_locked_many(*, orders: Sequence[Order], to_status: str, actor) -> list[Order]:
    """Move many orders to `to_status` at once: the bulk form of
    `order_transition`, for the background worker.

    The caller has already locked the orders' rows (`select_for_update`) in
    this transaction, so `orders` is what the database holds. Every move is
    checked against the status table first; if one is refused nothing moves.
    One UPDATE and one multi-row INSERT of events, whatever the number."""
    effects = [
        _refuse_unless_allowed(order.status, to_status, actor_role(order, actor))
        for order in orders
    ]
    for order, effect in zip(orders, effects, strict=True):
        _apply_stock_effect(order, effect, to_status, actor)
    now = timezone.now()
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(
        status=to_status, event_sequence=F("event_sequence") + 1, updated_at=now
    )
    OrderEvent.objects.bulk_create(
        OrderEvent(
            order=order,
            type=OrderEvent.Type.STATUS_CHANGED,
            from_status=order.status,
            to_status=to_status,
            actor=actor,
        )
        for order in orders
    )
    from_statuses = [order.status for order in orders]
    for order in orders:
        order.status, order.updated_at = to_status, now
        order.event_sequence += 1
    prefetch_related_objects(orders, "lines")  # the events show each order's items
    cache.orders_changed([order.pk for order in orders])
    events_record(
        _order_event(order, Event.Type.ORDER_STATUS_CHANGED, {"from": frm, "to": to_status})
        for order, frm in zip(orders, from_statuses, strict=True)
    )
    metrics.count_moved(to_status, len(orders))
    return list(orders)


def order_cancel(*, order: Order | int, actor, reason: str = "") -> Order:
    """Cancel an order: its owner while it is pending, staff while it is
    pending or processing. Its reserved stock is released."""
    return order_transition(order=order, to_status=OrderStatus.CANCELLED, actor=actor, note=reason)


@transaction.atomic
def order_update_details(
    *, order: Order | int, actor, shipping_address: str | None = None, notes: str | None = None
) -> Order:
    """Change the shipping address and notes: the owner while the order is
    pending, staff at any time. Records what changed as an event."""
    order = (
        Order.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=getattr(order, "pk", order))
    )
    if not staff_has_perm(actor, CHANGE_ORDER):
        if actor is None or actor.pk != order.customer_id:
            raise PermissionRefused(f"Changing an order's details needs {CHANGE_ORDER}.")
        if order.status != OrderStatus.PENDING:
            raise OrderNotEditable()
    changes = {
        field: value
        for field, value in (("shipping_address", shipping_address), ("notes", notes))
        if value is not None and value != getattr(order, field)
    }
    if not changes:
        return order
    for field, value in changes.items():
        setattr(order, field, value)
    order.event_sequence += 1
    order.save(update_fields=[*changes, "event_sequence", "updated_at"])
    OrderEvent.objects.create(
        order=order,
        type=OrderEvent.Type.UPDATED,
        actor=actor,
        data={"fields": sorted(changes)},
    )
    cache.orders_changed([order.pk])
    events_record([_order_event(order, Event.Type.ORDER_UPDATED, {"fields": sorted(changes)})])
    return order


@transaction.atomic
def order_change(
    *,
    order: Order | int,
    actor,
    status: str | None = None,
    shipping_address: str | None = None,
    notes: str | None = None,
) -> Order:
    """Change the delivery details and/or move the order, all or nothing:
    `order_update_details`, then `order_transition`, with their rules. Only
    staff who may move orders send a `status`; an owner cancels instead."""
    if status is not None and not can_move_orders(actor):
        raise PermissionRefused(
            f"Only staff with {MOVE_ORDER} may change an order's status; cancel it instead."
        )
    if shipping_address is not None or notes is not None:
        order = order_update_details(
            order=order, actor=actor, shipping_address=shipping_address, notes=notes
        )
    if status is not None:
        order = order_transition(order=order, to_status=status, actor=actor)
    return order


class TransitionReport(NamedTuple):
    """What `order_transition_each` did: the orders it moved, and why it
    could not move the others (`{order_id: reason}`)."""

    moved: list[int]
    refused: dict[int, str]


def order_transition_each(
    *, order_ids: Iterable[int], to_status: str, actor, note: str = ""
) -> TransitionReport:
    """Move each order to `to_status` in a transaction of its own, so one
    refusal does not stop the rest (staff acting on a selection). Orders are
    taken in id order; each move is `order_transition` with its rules."""
    moved, refused = [], {}
    for order_id in sorted(set(order_ids)):
        try:
            order_transition(order=order_id, to_status=to_status, actor=actor, note=note)
        except DomainError as error:
            refused[order_id] = str(error.detail)
        except Order.DoesNotExist:
            refused[order_id] = "The order no longer exists."
        else:
            moved.append(order_id)
    return TransitionReport(moved, refused)
