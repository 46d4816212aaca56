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


def insert_statement(objs, connection, *, returning: str = "") -> tuple[str, list]:
    """`INSERT INTO <table> (...) VALUES (...), ...` of model instances (all
    of one model), with its parameters, for a caller that sends several
    writes in one statement (data-modifying CTEs on PostgreSQL). Each value
    is what `bulk_create` would send: the field's `pre_save` (auto_now and
    the like) then its `get_db_prep_save`; the primary key is left to the
    database. `returning`: columns for a RETURNING clause."""
    objs = list(objs)
    meta = objs[0]._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key and not f.generated]
    quote = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [
        field.get_db_prep_save(field.pre_save(obj, True), connection)
        for obj in objs
        for field in fields
    ]
    # Only the model's own table and column names go into the text; every
    # value is a parameter.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES {', '.join([row] * len(objs))}"
    )
    if returning:
        sql += f" RETURNING {returning}"
    return sql, params
