"""The order status machine as data: which moves exist and who may make them.

`orders.services.order_transition` is the only code that changes a status; it
refuses any move that is not in `TRANSITIONS` for the actor making it.
"""

from django.db import models

from core.actors import SYSTEM as SYSTEM_ACTOR


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class Actor(models.TextChoices):
    """Who asks for a move: the customer who owns the order, a staff member,
    or the system (the background worker)."""

    OWNER = "owner", "Owner"
    STAFF = "staff", "Staff"
    SYSTEM = SYSTEM_ACTOR, "System"


class StockEffect(models.TextChoices):
    RELEASE = "release", "Release the reservation"
    CONSUME = "consume", "Consume the reservation"


S, A, E = OrderStatus, Actor, StockEffect

# (from, to): (who may make the move, what happens to the reserved stock)
TRANSITIONS: dict[tuple[str, str], tuple[frozenset[str], str | None]] = {
    (S.PENDING, S.PROCESSING): (frozenset({A.STAFF, A.SYSTEM}), None),
    (S.PENDING, S.CANCELLED): (frozenset({A.OWNER, A.STAFF}), E.RELEASE),
    (S.PROCESSING, S.CANCELLED): (frozenset({A.STAFF}), E.RELEASE),
    (S.PROCESSING, S.SHIPPED): (frozenset({A.STAFF}), E.CONSUME),
    (S.SHIPPED, S.DELIVERED): (frozenset({A.STAFF}), None),
    (S.PENDING, S.FAILED): (frozenset({A.SYSTEM}), E.RELEASE),
    (S.PROCESSING, S.FAILED): (frozenset({A.SYSTEM}), E.RELEASE),
}

# Orders in these statuses hold reserved stock.
HOLDING_STOCK = frozenset({S.PENDING, S.PROCESSING})


def allowed_targets(from_status: str, actor: str) -> list[str]:
    """The statuses `actor` may move an order in `from_status` to."""
    return [
        to
        for (frm, to), (actors, _) in TRANSITIONS.items()
        if frm == from_status and actor in actors
    ]
