"""Small database helpers shared by the apps."""

import hashlib

from django.db import transaction
from django.db.models import QuerySet

DELETE_BATCH = 5000


def delete_in_batches(queryset: QuerySet, batch_size: int = DELETE_BATCH) -> int:
    """Delete what `queryset` matches, `batch_size` rows per statement and
    transaction, so a large clean-up never holds long locks or a huge
    transaction. Returns the number of rows of the queryset's model deleted."""
    model = queryset.model
    total = 0
    while True:
        pks = list(queryset.order_by().values_list("pk", flat=True)[:batch_size])
        if not pks:
            return total
        _, per_model = model._default_manager.filter(pk__in=pks).delete()
        total += per_model.get(model._meta.label, 0)


def lock_name(name: str) -> None:
    """Hold a lock on `name` until the current transaction ends, for a
    check-then-insert that must not race (two requests counting the same
    rows, then both inserting). On PostgreSQL it is an advisory lock keyed
    by a hash of the name; SQLite runs one writing transaction at a time
    (IMMEDIATE), so there is nothing more to take."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("lock_name needs a transaction to hold the lock.")
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
