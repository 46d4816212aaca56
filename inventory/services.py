"""Catalogue and stock services: the only code that changes products or stock.

Every change of on-hand or reserved stock takes the product row locks (through
`inventory.locks`, in primary-key order), changes the counters with one
`UPDATE ... SET x = x + delta` and writes a `StockMovement` per product, in the
same transaction. The CHECK constraints on `Product` are the backstop.
"""

from collections.abc import Iterable, Mapping
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, Sum, Value, When
from django.utils import timezone

from core.db import insert_statement
from core.events import event, events_record
from core.models import Event
from core.permissions import require_staff_perm

from .cache import products_changed
from .exceptions import (
    DuplicateSku,
    InsufficientStock,
    InvalidAdjustment,
    ProductInUse,
    ProductUnavailable,
)
from .locks import lock_products
from .models import MAX_STOCK, Product, StockMovement
from .representation import product_data

Kind = StockMovement.Kind

ADJUST_STOCK = "inventory.adjust_stock"

CATALOGUE_FIELDS = ("sku", "name", "description", "price", "is_active", "low_stock_threshold")

# Which way each adjustment reason may move stock; a correction goes either way.
ADJUSTMENT_SIGNS = {Kind.RESTOCK: 1, Kind.RETURN: 1, Kind.DAMAGE: -1, Kind.CORRECTION: 0}


# --- Catalogue --------------------------------------------------------------------


def product_create(
    *,
    sku: str,
    name: str,
    price: Decimal,
    description: str = "",
    is_active: bool = True,
    low_stock_threshold: int = 5,
) -> Product:
    """A new product, with no stock: stock arrives through `stock_adjust`."""
    product = Product(
        sku=sku,
        name=name,
        price=price,
        description=description,
        is_active=is_active,
        low_stock_threshold=low_stock_threshold,
    )
    _save_catalogue(product)
    return product


def product_update(*, product: Product, data: Mapping) -> Product:
    """Change catalogue fields; stock fields are not among them."""
    unknown = set(data) - set(CATALOGUE_FIELDS)
    if unknown:
        raise ValueError(f"Not catalogue fields: {sorted(unknown)}")
    for field, value in data.items():
        setattr(product, field, value)
    _save_catalogue(product, update_fields=[*data, "updated_at"])
    return product


def _save_catalogue(product: Product, update_fields=None) -> None:
    try:
        # The savepoint keeps an outer transaction usable after a clash.
        with transaction.atomic():
            product.save(update_fields=update_fields)
    except IntegrityError:
        # Two requests raced for one SKU; the serializer's check saw it free.
        if Product.objects.filter(sku=product.sku).exclude(pk=product.pk).exists():
            raise DuplicateSku(attr="sku") from None
        raise


def product_in_use(product: Product) -> bool:
    """Whether the product has any stock movement: it was stocked or ordered."""
    return product.movements.exists()


@transaction.atomic
def product_delete(*, product: Product) -> None:
    """Delete a product that never had stock: one with any stock movement
    stays, for its ledger (append-only) and its orders, and is deactivated
    instead (409 `product_in_use`)."""
    if product_in_use(product):
        raise ProductInUse()
    product.delete()


# --- Stock ------------------------------------------------------------------------


@transaction.atomic
def stock_adjust(
    *, product: Product, delta: int, reason: str, actor, note: str = ""
) -> StockMovement:
    """Change on-hand stock by `delta` for a staff reason (restock, correction,
    damage, return) and record it. On-hand stock may not fall below what is
    reserved. `product` is refreshed with the new figures.

    `actor` is a staff member with `inventory.adjust_stock`, or None for the
    system (demo data, imports)."""
    if actor is not None:
        require_staff_perm(actor, ADJUST_STOCK)
    if reason not in ADJUSTMENT_SIGNS:
        raise InvalidAdjustment(f'"{reason}" is not an adjustment reason.', attr="reason")
    if delta == 0:
        raise InvalidAdjustment("The change must not be zero.", attr="delta")
    sign = ADJUSTMENT_SIGNS[reason]
    if sign and (delta > 0) != (sign > 0):
        word = "positive" if sign > 0 else "negative"
        raise InvalidAdjustment(f"The reason {reason} needs a {word} delta.", attr="delta")

    locked = lock_products([product.pk]).get(product.pk)
    if locked is None:
        raise ProductUnavailable("This product no longer exists.", product_id=product.pk)
    on_hand = locked.stock_on_hand + delta
    if on_hand < locked.stock_reserved:
        raise InsufficientStock(
            f"This would leave {on_hand} of {locked.sku} on hand, less than the "
            f"{locked.stock_reserved} reserved for orders.",
            product_id=locked.pk,
            attr="delta",
        )
    if on_hand > MAX_STOCK:
        raise InvalidAdjustment(f"On-hand stock cannot exceed {MAX_STOCK}.", attr="delta")
    now = timezone.now()
    Product.objects.filter(pk=locked.pk).update(
        stock_on_hand=F("stock_on_hand") + delta, updated_at=now
    )
    products_changed([locked.pk])
    product.stock_on_hand, product.stock_reserved = on_hand, locked.stock_reserved
    product.updated_at = now
    movement = StockMovement.objects.create(
        product=product, kind=reason, quantity=delta, actor=actor, note=note
    )
    if delta < 0:
        locked.stock_on_hand, locked.updated_at = on_hand, now  # the row as it now is
        events_record(low_stock_events(products=[locked], taken={locked.pk: -delta}))
    return movement


@transaction.atomic
def stock_reserve(*, order, lines: Mapping[int, int], actor=None) -> list[StockMovement]:
    """Reserve `lines` ({product id: quantity}) for `order`, all or nothing.

    Raises `ProductUnavailable` for a product that does not exist or is
    inactive, and `InsufficientStock` naming the first product (by id) that has
    less available than asked; then nothing is reserved.
    """
    products = lock_products(lines)
    movements = stock_reserve_locked(order=order, lines=lines, products=products, actor=actor)
    events_record(low_stock_events(products=products.values(), taken=lines))
    return movements


def stock_reserve_locked(
    *, order, lines: Mapping[int, int], products: Mapping[int, Product], actor=None
) -> list[StockMovement]:
    """`stock_reserve` for a caller that has already locked the products with
    `lock_products` in its own transaction (placing an order reads and locks
    them once, to price the lines and to reserve). Same checks, same errors;
    if one is raised the caller's transaction must roll back."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("stock_reserve_locked needs the transaction that holds the locks.")
    stock_check_reservable(lines=lines, products=products)
    _reserved_in_memory(products, lines, _update_stock(reserved=lines))
    return _record(Kind.RESERVE, lines, order=order, actor=actor)


def _reserved_in_memory(products: Mapping[int, Product], lines: Mapping[int, int], now) -> None:
    """The locked rows as a reservation of `lines` at `now` leaves them."""
    for product_id, quantity in lines.items():
        products[product_id].stock_reserved += quantity
        products[product_id].updated_at = now


def low_stock_events(*, products: Iterable[Product], taken: Mapping[int, int]) -> list[Event]:
    """A `product.low_stock` event for each active product whose available
    stock has just fallen to or under its threshold: `taken[id]` units ago it
    was above. `products` are the rows as they now are. A product already
    low that falls further is not announced again."""
    events = []
    for product in products:
        after = product.stock_available
        before = after + taken.get(product.pk, 0)
        if product.is_active and before > product.low_stock_threshold >= after:
            events.append(
                event(
                    Event.Type.PRODUCT_LOW_STOCK,
                    aggregate="product",
                    aggregate_id=product.pk,
                    data={"product": product_data(product)},
                )
            )
    return events


def stock_check_reservable(*, lines: Mapping[int, int], products: Mapping[int, Product]) -> None:
    """Raise what `stock_reserve_locked` would refuse `lines` for, writing
    nothing: `ProductUnavailable` for a product that does not exist or is
    inactive, `InsufficientStock` for the first product (by id) with less
    available than asked. `products` are the locked rows."""
    if not lines or any(quantity <= 0 for quantity in lines.values()):
        raise ValueError("Reserve at least one unit of each product.")
    for product_id in sorted(lines):
        product = products.get(product_id)
        if product is None or not product.is_active:
            raise ProductUnavailable(product_id=product_id)
        if product.stock_available < lines[product_id]:
            raise InsufficientStock(
                f"Not enough stock for {product.sku} ({product.name}): "
                f"{lines[product_id]} requested, {product.stock_available} available.",
                product_id=product_id,
            )


@transaction.atomic
def stock_release(*, order, actor=None, note: str = "") -> list[StockMovement]:
    """Give back whatever `order` still holds reserved (on cancel or failure).

    What is held is read from the ledger, so a second release finds nothing
    left and changes nothing. The caller holds the order's row lock."""
    held = _held_by(order)
    _update_stock(reserved={product_id: -quantity for product_id, quantity in held.items()})
    return _record(Kind.RELEASE, {pid: -q for pid, q in held.items()}, order, actor, note)


@transaction.atomic
def stock_consume(*, order, actor=None, note: str = "") -> list[StockMovement]:
    """Ship `order`: what it holds reserved leaves the warehouse, so on-hand
    and reserved stock both drop. Like release, it happens at most once."""
    held = _held_by(order)
    out = {product_id: -quantity for product_id, quantity in held.items()}
    _update_stock(on_hand=out, reserved=out)
    return _record(Kind.SHIP, out, order, actor, note)


def _held_by(order) -> dict[int, int]:
    """Lock the products `order` has reserved and return what it still holds."""
    product_ids = (
        StockMovement.objects.filter(order=order, kind=Kind.RESERVE)
        .values_list("product_id", flat=True)
        .distinct()
    )
    lock_products(product_ids)
    held = (
        StockMovement.objects.filter(order=order, kind__in=StockMovement.RESERVED_KINDS)
        .values("product_id")
        .annotate(held=Sum("quantity"))
    )
    return {row["product_id"]: row["held"] for row in held if row["held"] > 0}


def _update_stock(*, on_hand: Mapping[int, int] | None = None, reserved=None):
    """One UPDATE adding per-product deltas to the counters (rows already
    locked). Returns the time written as the products' `updated_at`."""
    now = timezone.now()
    changes = {}
    if on_hand:
        changes["stock_on_hand"] = F("stock_on_hand") + _per_product(on_hand)
    if reserved:
        changes["stock_reserved"] = F("stock_reserved") + _per_product(reserved)
    if changes:
        ids = set(on_hand or ()) | set(reserved or ())
        Product.objects.filter(pk__in=ids).update(**changes, updated_at=now)
        products_changed(ids)
    return now


def _per_product(deltas: Mapping[int, int]) -> Case:
    return Case(
        *(When(pk=product_id, then=Value(delta)) for product_id, delta in deltas.items()),
        default=Value(0),
        output_field=IntegerField(),
    )


def _movements(kind, quantities: Mapping[int, int], order=None, actor=None, note: str = ""):
    """The ledger rows of one change, by product id."""
    return [
        StockMovement(
            product_id=product_id,
            kind=kind,
            quantity=quantity,
            order=order,
            actor=actor,
            note=note,
        )
        for product_id, quantity in sorted(quantities.items())
    ]


def _record(kind, quantities: Mapping[int, int], order=None, actor=None, note: str = ""):
    return StockMovement.objects.bulk_create(_movements(kind, quantities, order, actor, note))


def stock_reserve_statements(
    *, order, lines: Mapping[int, int], products: Mapping[int, Product], actor=None
) -> list[tuple[str, list]]:
    """`stock_reserve_locked` as SQL that the caller sends together with its
    own writes, in one statement (PostgreSQL's data-modifying CTEs): the same
    checks first, then the same UPDATE of the counters and the same ledger
    rows. `products` are updated in memory as `stock_reserve_locked` does.
    A property-based test holds the two paths equal."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("stock_reserve_statements needs the transaction that holds the locks.")
    stock_check_reservable(lines=lines, products=products)
    connection = transaction.get_connection()
    now = timezone.now()
    table = connection.ops.quote_name(Product._meta.db_table)
    deltas = sorted(lines.items())
    # The table's name and placeholders go into the text; the values are parameters.
    update = (
        f"UPDATE {table} SET stock_reserved = {table}.stock_reserved + v.quantity, "  # noqa: S608
        f"updated_at = %s FROM (VALUES {', '.join(['(%s, %s)'] * len(deltas))}) "
        f"AS v(id, quantity) WHERE {table}.id = v.id",
        [now, *(value for pair in deltas for value in pair)],
    )
    _reserved_in_memory(products, lines, now)
    products_changed(lines)
    movements = insert_statement(_movements(Kind.RESERVE, lines, order, actor), connection)
    return [update, movements]
