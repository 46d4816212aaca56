"""Every order copied to the backup storage after each change (SPEC §10),
through the outbox.

Publishing an order event marks the order's copy due (`OrderCopy.due_sequence`,
in the transaction that publishes the event). A worker on the `maintenance`
queue then writes `orders/{id}.json` with the order as it is now and records
the event number that state follows (`copied_sequence`). A storage that is
down only delays copies: the rows stay due and the next sweep writes them.
Both numbers only grow, so an older state never overwrites a newer one, and
two workers never write one order at once (its row is locked, SKIP LOCKED).
"""

import json
import logging
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.models import Event
from orders.models import Order

from .documents import backup_queryset, order_document
from .models import OrderCopy
from .storage import backup_storage

logger = logging.getLogger(__name__)

COPY_BATCH = 200


def copy_name(order_id: int) -> str:
    return f"orders/{order_id}.json"


def copies_due_from_events(events: list[Event]) -> None:
    """The backups' part of publishing events (`core.events.events_publish`):
    each order an event is about has its copy due up to that event. One
    statement for the batch; an existing row's number only grows."""
    latest: dict[int, int] = {}
    for event in events:
        if event.aggregate == "order" and event.sequence:
            latest[event.aggregate_id] = max(latest.get(event.aggregate_id, 0), event.sequence)
    if not latest:
        return
    table = OrderCopy._meta.db_table
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    rows = ", ".join(["(%s, %s, 0, 0, '')"] * len(latest))
    params = [value for pair in sorted(latest.items()) for value in pair]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (order_id, due_sequence, copied_sequence, attempts, last_error) "  # noqa: S608
            f"VALUES {rows} ON CONFLICT (order_id) DO UPDATE SET due_sequence = "
            f"{greatest}({table}.due_sequence, excluded.due_sequence)",
            params,
        )


@dataclass
class CopyReport:
    copied: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def order_copies_write(*, limit: int = COPY_BATCH) -> CopyReport:
    """Write up to `limit` due copies, oldest order first."""
    report = CopyReport()
    with transaction.atomic():
        due = list(
            OrderCopy.objects.select_for_update(skip_locked=True)
            .filter(due_sequence__gt=F("copied_sequence"))
            .order_by("order_id")[:limit]
        )
        if not due:
            return report
        wanted = Order.objects.filter(pk__in=[copy.order_id for copy in due])
        orders = {order.pk: order for order in backup_queryset(wanted)}
        storage = backup_storage()
        now = timezone.now()
        for copy in due:
            order = orders.get(copy.order_id)
            if order is None:  # gone (never, orders are kept; but say so)
                copy.copied_sequence, copy.last_error = copy.due_sequence, "The order is gone."
                continue
            document = order_document(order)
            try:
                # The storage overwrites in place (allow_overwrite / file_overwrite).
                storage.save(
                    copy_name(order.pk), ContentFile(json.dumps(document, sort_keys=True).encode())
                )
            except Exception as error:  # the storage: down, refusing, full
                copy.attempts += 1
                copy.last_error = f"{type(error).__name__}: {error}"[:300]
                report.failed[copy.order_id] = copy.last_error
                continue
            # The state written follows this event; later events keep it due.
            copy.copied_sequence = max(copy.copied_sequence, order.event_sequence)
            copy.copied_at, copy.attempts, copy.last_error = now, 0, ""
            report.copied.append(copy.order_id)
        OrderCopy.objects.bulk_update(
            due, ["copied_sequence", "copied_at", "attempts", "last_error"]
        )
    if report.failed:
        logger.warning(
            "%d order copies could not be written; they stay due: %s",
            len(report.failed),
            next(iter(report.failed.values())),
        )
    return report


def order_copies_due() -> int:
    return OrderCopy.objects.filter(due_sequence__gt=F("copied_sequence")).count()
