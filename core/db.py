"""Small database helpers shared by the apps."""

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
