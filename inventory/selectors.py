from django.db.models import QuerySet

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
