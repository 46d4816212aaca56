from inventory.models import Product
from inventory.selectors import stock_ledger_totals


def assert_ledger_explains(product: Product):
    """The product's ledger adds up to its stock, and the stock is within bounds."""
    product.refresh_from_db()
    assert stock_ledger_totals(product_id=product.pk) == (
        product.stock_on_hand,
        product.stock_reserved,
    )
    assert 0 <= product.stock_reserved <= product.stock_on_hand
