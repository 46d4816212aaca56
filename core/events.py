"""The outbox (SPEC §9): domain events are rows written in the same
transaction as the change they report, so nothing is announced before commit
and nothing committed is lost if a process dies.

Services build events with `event(...)` and write them with `events_record`
(one multi-row INSERT, whatever their number). After the transaction commits,
the handlers that apps registered with `on_events_committed` are called —
the webhooks app hands the new events to a worker there. A handler that fails
loses nothing: the rows are still there for the next sweep.

The consumers of the bus (webhooks, backups) register with
`register_consumer`. `events_publish`, run by their workers, takes the events
not yet published and hands each batch to every consumer in one transaction,
in which each writes its own work items (a webhook delivery, an order copy
due); then the batch is marked published. One bus, each consumer's work in
its own table.
"""

import logging
from collections.abc import Callable, Iterable

from django.db import transaction
from django.utils import timezone

from .models import Event

logger = logging.getLogger(__name__)

_handlers: list[Callable[[], object]] = []
_consumers: list[Callable[[list[Event]], object]] = []


def on_events_committed(handler: Callable[[], object]) -> None:
    """Call `handler()` after each transaction that recorded events commits."""
    if handler not in _handlers:
        _handlers.append(handler)


def event(type: str, *, aggregate: str, aggregate_id: int, data: dict, sequence=None) -> Event:
    """An event, not yet written."""
    return Event(
        type=type, aggregate=aggregate, aggregate_id=aggregate_id, data=data, sequence=sequence
    )


def events_record(events: Iterable[Event]) -> list[Event]:
    """Write `events` in the caller's transaction, in one statement; the
    registered handlers hear of them once it commits."""
    events = list(events)
    if not events:
        return []
    rows = Event.objects.bulk_create(events)
    announce_after_commit()
    return rows


def announce_after_commit() -> None:
    """Have the handlers called once the current transaction commits (at once
    outside one): for work a consumer should see soon that is not a new event,
    such as a redelivery. Once per transaction, however many calls."""
    connection = transaction.get_connection()
    if not any(callback is _announce for _, callback, _ in connection.run_on_commit):
        transaction.on_commit(_announce)


def _announce() -> None:
    for handler in list(_handlers):
        try:
            handler()
        except Exception:  # the outbox keeps the events; a sweep finds them
            logger.warning("An outbox handler failed; the events wait for the sweep", exc_info=True)


def register_consumer(consume: Callable[[list[Event]], object]) -> None:
    """`consume(events)` is called with each batch of newly published events,
    inside the transaction that publishes them: it writes its work items."""
    if consume not in _consumers:
        _consumers.append(consume)


def events_publish(*, limit: int = 500) -> int:
    """Hand the events not yet published to every consumer, oldest first, and
    mark them published. Safe to run in several workers at once (the events
    are taken with SKIP LOCKED). Returns the number of events published."""
    with transaction.atomic():
        events = list(
            Event.objects.select_for_update(skip_locked=True)
            .filter(published_at__isnull=True)
            .order_by("id")[:limit]
        )
        if not events:
            return 0
        for consume in list(_consumers):
            consume(events)
        Event.objects.filter(pk__in=[e.pk for e in events]).update(published_at=timezone.now())
    return len(events)
