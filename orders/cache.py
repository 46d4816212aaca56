"""GET /api/v1/orders/{id}/ served from Redis: each order's rendered JSON,
keyed by its id with its owner beside it (core.cache.VersionedCache).

- Who may see it is decided on every request, from the owner kept with the
  entry: staff who may view orders see any, anyone else only their own; any
  other order is a 404, as the database path answers (never a 403).
- The services that change an order (`orders.services`: a move, a bulk move
  by the worker, new details) invalidate its entry at once and again when
  their transaction commits, and a change of a customer's e-mail (shown in each order)
  invalidates that customer's orders. As a safety net the outbox consumer
  invalidates every order an event is about once the event is published.
- The JSON is exactly what the database path renders (`order_data`, which
  `OrderSerializer` returns, through DRF's JSON renderer): a test holds the
  two byte-for-byte equal.
"""

from django.db.models.signals import post_save
from rest_framework.renderers import JSONRenderer

from accounts.models import User
from core.cache import VersionedCache
from core.models import Event

from .models import Order
from .representation import order_data
from .selectors import can_see_all_orders, orders_with_lines

# Entries expire after this (seconds) even if nothing changes.
TTL = 600

order_details = VersionedCache("orders:detail", ttl=TTL)
_render = JSONRenderer().render


class _Missing(Exception):
    pass


def order_detail_json(*, pk: int, viewer) -> bytes | None:
    """The order's JSON as `viewer` may see it, or None when there is no such
    order or it is someone else's (the API answers 404 for both)."""

    def build() -> bytes:
        order = orders_with_lines().filter(pk=pk).first()
        if order is None:
            raise _Missing
        return b"%d:" % order.customer_id + _render(order_data(order))

    try:
        entry = order_details.get_or_build(pk, build)
    except _Missing:
        return None
    owner, _, body = entry.partition(b":")
    if int(owner) != viewer.pk and not can_see_all_orders(viewer):
        return None
    return body


def orders_changed(order_ids) -> None:
    """Invalidate these orders' entries now and when the transaction commits."""
    order_details.invalidate_on_commit(order_ids)


def _customer_saved(sender, instance, created, update_fields=None, **kwargs):
    """A customer's e-mail is part of each of their orders."""
    if created or (update_fields is not None and "email" not in update_fields):
        return
    order_details.invalidate_on_commit(
        Order.objects.filter(customer_id=instance.pk).values_list("pk", flat=True)
    )


def invalidate_from_events(events: list[Event]) -> None:
    """The outbox consumer: each published order event invalidates its order."""
    order_details.invalidate_on_commit({e.aggregate_id for e in events if e.aggregate == "order"})


def connect() -> None:
    post_save.connect(_customer_saved, sender=User, dispatch_uid="orders.cache.customer_saved")
