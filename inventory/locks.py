"""Row locks on products: the one place they are taken.

Every transaction that changes stock locks the product rows it touches here,
always in primary-key order. Two orders for the same products, in whatever
order their lines are listed, then queue one behind the other instead of
deadlocking.
"""

from collections.abc import Iterable

from .models import Product


def lock_products(product_ids: Iterable[int]) -> dict[int, Product]:
    """Lock the rows of these products until the transaction ends and return
    them by id; ids that match no product are missing from the result."""
    queryset = (
        Product.objects.select_for_update(of=("self",))
        .filter(pk__in=set(product_ids))
        .order_by("pk")
    )
    return {product.pk: product for product in queryset}
