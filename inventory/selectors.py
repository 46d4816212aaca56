from django.db.models import Q, QuerySet, Sum

from core.permissions import staff_has_any_perm

from .models import Product, StockMovement


def can_see_stock(user) -> bool:
    """Whether `user` sees the catalogue as staff do: inactive products and
    the stock figures behind `stock_available` (view or change permission,
    as in the admin)."""
    return staff_has_any_perm(user, "inventory.view_product", "inventory.change_product")


def product_list(*, user) -> QuerySet[Product]:
    """The catalogue as `user` may see it: staff who may view products see
    every product; everyone else (customers, anonymous visitors, staff
    without the permission) the active ones."""
    products = Product.objects.all()
    if not can_see_stock(user):
        products = products.filter(is_active=True)
    return products


def product_low_stock() -> QuerySet[Product]:
    """Active products whose available stock is at or under their threshold."""
    return Product.objects.filter(is_active=True).low_stock()


def stock_movement_list(*, product: Product) -> QuerySet[StockMovement]:
    """A product's ledger, oldest first."""
    return (
        StockMovement.objects.filter(product=product)
        .select_related("actor")
        .order_by("created_at", "id")
    )


def stock_ledger_totals(*, product_id: int) -> tuple[int, int]:
    """(on hand, reserved) as the product's ledger adds them up; they equal
    the product's stock figures whenever every change went through the services."""
    totals = StockMovement.objects.filter(product_id=product_id).aggregate(
        on_hand=Sum("quantity", filter=Q(kind__in=StockMovement.ON_HAND_KINDS), default=0),
        reserved=Sum("quantity", filter=Q(kind__in=StockMovement.RESERVED_KINDS), default=0),
    )
    return totals["on_hand"], totals["reserved"]


def stock_held_by_orders(order_ids) -> dict[int, dict[int, int]]:
    """What each order still holds reserved, by product, as the ledger says:
    `{order_id: {product_id: quantity}}` (orders holding nothing are absent)."""
    rows = (
        StockMovement.objects.filter(order_id__in=order_ids, kind__in=StockMovement.RESERVED_KINDS)
        .values_list("order_id", "product_id")
        .annotate(held=Sum("quantity"))
        .order_by()
    )
    held: dict[int, dict[int, int]] = {}
    for order_id, product_id, quantity in rows:
        if quantity > 0:
            held.setdefault(order_id, {})[product_id] = quantity
    return held
