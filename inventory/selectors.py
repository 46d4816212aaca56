from django.db.models import Q, QuerySet, Sum

from .models import Product, StockMovement


def product_list(*, user) -> QuerySet[Product]:
    """The catalogue as `user` may see it: staff see every product, customers
    and anonymous visitors the active ones."""
    products = Product.objects.all()
    if not (user and user.is_staff):
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
