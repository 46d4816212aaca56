from core.exceptions import DomainError


class InvalidTransition(DomainError):
    """A status move that is not in the status table for this actor."""

    status_code = 409
    code = "invalid_transition"
    default_detail = "This order cannot make that move."


class OrderNotEditable(DomainError):
    status_code = 403
    code = "permission_denied"
    default_detail = "The address and notes can be changed only while the order is pending."


class IdempotencyKeyReused(DomainError):
    status_code = 422
    code = "idempotency_key_reused"
    default_detail = (
        "This Idempotency-Key was already used with a different request body; use a new key."
    )


class InvalidIdempotencyKey(DomainError):
    status_code = 400
    code = "invalid"
    default_detail = "Use 1 to 255 printable characters without spaces."

    def __init__(self, detail: str | None = None):
        super().__init__(detail, attr="Idempotency-Key")


class InvalidOrder(DomainError):
    """Input that fails a placement rule; `attr` points at the line and field."""

    status_code = 400
    code = "invalid"


class OrderLimitExceeded(DomainError):
    """More units of a product in one line than one customer may order."""

    status_code = 409
    code = "limit_exceeded"
    default_detail = "This order is over a per-customer limit."


class TooManyOpenOrders(DomainError):
    """The customer already holds the most open orders one account may have."""

    status_code = 429
    code = "too_many_open_orders"
    default_detail = "Too many open orders."


class ProcessingRefused(Exception):
    """An order that cannot be processed, for a reason its customer may read."""

    def __init__(self, reason: str, code: str):
        super().__init__(reason)
        self.reason, self.code = reason, code
