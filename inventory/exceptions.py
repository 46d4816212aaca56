from core.exceptions import DomainError


class InsufficientStock(DomainError):
    """Not enough available stock for a reservation, or an adjustment that
    would leave less on hand than is reserved."""

    status_code = 409
    code = "insufficient_stock"
    default_detail = "Not enough stock."

    def __init__(self, detail: str | None = None, *, product_id: int, attr: str | None = None):
        super().__init__(detail, attr=attr)
        self.product_id = product_id


class ProductUnavailable(DomainError):
    """A product that does not exist or is not for sale."""

    status_code = 400
    code = "product_unavailable"
    default_detail = "This product does not exist or is not for sale."

    def __init__(self, detail: str | None = None, *, product_id: int, attr: str | None = None):
        super().__init__(detail, attr=attr)
        self.product_id = product_id


class ProductInUse(DomainError):
    status_code = 409
    code = "product_in_use"
    default_detail = (
        "This product has stock movements (it was stocked or ordered), and the ledger keeps "
        "them: deactivate it instead (is_active: false)."
    )


class InvalidAdjustment(DomainError):
    status_code = 400
    code = "invalid"


class DuplicateSku(InvalidAdjustment):
    code = "unique"
    default_detail = "A product with this SKU already exists."
