"""GET /api/v1/products/{id}/ served from Redis (SPEC §12): each product's
rendered JSON in two versions, as customers see it and as staff who may see
stock do, keyed by its id (core.cache.VersionedCache).

- Who sees what is decided on every request: staff who may view or change
  products get the staff version of any product; everyone else the public
  version, and a 404 for an inactive product, as the database path answers.
  The public entry carries the product's `is_active` for that.
- Every write to a product's row invalidates its entries at once and again
  when its transaction commits (`products_changed`): the catalogue services,
  the stock services (each placement, release, shipment and adjustment), the
  one-statement placement path, the restore and the demo seeding; a
  `post_save`/`post_delete` receiver catches any other ORM save. So a reader
  never gets the product as it was before a committed change (one exception:
  a change made while Redis hung, for up to TTL once it answers again).
- The JSON is what the database path renders (the view's serializer through
  DRF's JSON renderer): a test holds the two byte-for-byte equal.
"""

from collections.abc import Callable, Iterable

from django.db.models.signals import post_delete, post_save

from core.cache import VersionedCache

from .models import Product

# Entries expire after this (seconds) even if nothing changes. Short: placing
# an order invalidates its products, and while Redis hangs that is skipped
# rather than waited for (core/cache.py, skip_while_paused), so a change
# made during an outage may show in an older entry for at most this long once
# Redis is back (never during the outage: reads then skip Redis too).
TTL = 60

product_details = VersionedCache("inventory:product", ttl=TTL, skip_while_paused=True)

STAFF, PUBLIC = "staff", "public"


class _Missing(Exception):
    pass


def product_detail_json(
    *, pk: int, staff: bool, render: Callable[[Product, bool], bytes]
) -> bytes | None:
    """The product's JSON for a staff viewer (`staff`) or anyone else, or
    None when there is no such product or the viewer may not see it (404).
    `render(product, staff)` is the view's own rendering."""

    def build() -> bytes:
        product = Product.objects.filter(pk=pk).first()
        if product is None:
            raise _Missing
        body = render(product, staff)
        return body if staff else (b"1:" if product.is_active else b"0:") + body

    try:
        entry = product_details.get_or_build(f"{STAFF if staff else PUBLIC}:{pk}", build)
    except _Missing:
        return None
    if staff:
        return entry
    active, _, body = entry.partition(b":")
    return body if active == b"1" else None


def products_changed(product_ids: Iterable[int]) -> None:
    """Invalidate these products' entries now and when the transaction commits."""
    keys = [f"{variant}:{pk}" for pk in set(product_ids) for variant in (STAFF, PUBLIC)]
    product_details.invalidate_on_commit(keys)


def _product_saved(sender, instance, **kwargs):
    if instance.pk is not None:
        products_changed([instance.pk])


def connect() -> None:
    post_save.connect(_product_saved, sender=Product, dispatch_uid="inventory.cache.saved")
    post_delete.connect(_product_saved, sender=Product, dispatch_uid="inventory.cache.deleted")
