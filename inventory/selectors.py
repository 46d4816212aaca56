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
