"""Texts to phones, through an outbox (as `orders.emails` does for mail).

A service that owes someone a text writes an `SmsMessage` row in its own
transaction (`sms_queue`); once that commits, the handlers registered with
`on_sms_queued` hear of it (`accounts.tasks.dispatch_sms` hands the row to a
worker on the `notifications` queue, never making the request wait for the
broker). The worker sends it through SMS_BACKEND (`sms_send`); a failure is
retried with backoff, and rows whose task was lost are found again by the
sweep (`sms_due`, run by beat). Sending locks the row and marks it sent, so
two tasks for one row send it once.

The body holds a live login code, so it is blanked once the message is sent
or given up. A message not sent before it expires (its code is dead) is given
up rather than sent late: a text costs money. A message given up is logged at
ERROR and shown as "failed for good", with its error, in the admin.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.db import delete_in_batches

from .models import SmsMessage
from .sms_backends import SmsRefused, get_backend

logger = logging.getLogger(__name__)

# After this many failed sends a message is given up.
MAX_ATTEMPTS = 5
# An unsent row is picked up by the sweep only this long after it was due, so
# that the task enqueued when it was written has had its chance first.
SWEEP_GRACE = timedelta(seconds=20)

_handlers: list[Callable[[list[int]], object]] = []


def on_sms_queued(handler: Callable[[list[int]], object]) -> None:
    """Call `handler(ids)` after each transaction that queued texts commits."""
    if handler not in _handlers:
        _handlers.append(handler)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed send: 5 s, doubling, at
    most 2 min (a login code lives minutes, not hours)."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 120))


def sms_queue(*, phone: str, body: str, expires_at: datetime | None = None) -> SmsMessage:
    """Record, in the caller's transaction, that `body` is owed to `phone`
    (E.164). It is handed to a worker once the transaction commits."""
    row = SmsMessage.objects.create(phone=phone, body=body, expires_at=expires_at)
    transaction.on_commit(lambda: _announce([row.pk]))
    return row


def _announce(ids: list[int]) -> None:
    for handler in list(_handlers):
        try:
            handler(ids)
        except Exception:  # the row is in the database: the sweep sends it
            logger.warning("Could not hand SMS %s to a worker; the sweep will", ids, exc_info=True)


def sms_due(*, limit: int = 1000) -> list[int]:
    """Queued rows whose (re)try time has passed, oldest first: those whose
    task was lost, or whose retries ran out in Celery before they ran out here."""
    return list(
        SmsMessage.objects.filter(
            status=SmsMessage.Status.QUEUED,
            next_attempt_at__lte=timezone.now() - SWEEP_GRACE,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


@dataclass
class SendResult:
    sent: list[int] = field(default_factory=list)
    # Rows that failed this time and will be tried again, and when the first is due.
    failed: list[int] = field(default_factory=list)
    retry_in: timedelta | None = None
    given_up: list[int] = field(default_factory=list)


def _give_up(row: SmsMessage, error: str, result: SendResult) -> None:
    row.status = SmsMessage.Status.FAILED
    row.last_error = error[:500]
    row.body = ""
    result.given_up.append(row.pk)
    logger.error("Giving up on %s after %d attempt(s): %s", row, row.attempts, row.last_error)


def _failed(row: SmsMessage, error: Exception, result: SendResult) -> None:
    """Record a failed send on `row`, and when to try it again."""
    row.attempts += 1
    message = f"{type(error).__name__}: {error}"
    if isinstance(error, SmsRefused) or row.attempts >= MAX_ATTEMPTS:
        _give_up(row, message, result)
        return
    row.last_error = message[:500]
    delay = retry_delay(row.attempts)
    row.next_attempt_at = timezone.now() + delay
    result.failed.append(row.pk)
    result.retry_in = min(result.retry_in or delay, delay)


def sms_send(*, ids: Sequence[int]) -> SendResult:
    """Send the rows among `ids` that are still queued.

    Rows another worker is sending right now are skipped (they are locked), so
    two tasks for the same rows send each once. A row whose moment has passed
    (`expires_at`) is given up unsent."""
    result = SendResult()
    with transaction.atomic():
        rows = list(
            SmsMessage.objects.select_for_update(skip_locked=True)
            .filter(pk__in=ids, status=SmsMessage.Status.QUEUED)
            .order_by("pk")
        )
        if not rows:
            return result
        backend = None
        for row in rows:
            if row.expires_at is not None and row.expires_at <= timezone.now():
                _give_up(row, "Expired before it could be sent.", result)
                continue
            try:
                backend = backend or get_backend()
                provider_id = backend.send(row.phone, row.body)
            except Exception as error:  # the provider, the network, the configuration
                logger.warning("Sending %s failed", row, exc_info=True)
                _failed(row, error, result)
            else:
                row.attempts += 1
                row.status = SmsMessage.Status.SENT
                row.sent_at = timezone.now()
                row.provider_id = (provider_id or "")[:100]
                row.body = ""
                row.last_error = ""
                result.sent.append(row.pk)
        SmsMessage.objects.bulk_update(
            rows,
            [
                "status",
                "attempts",
                "sent_at",
                "next_attempt_at",
                "last_error",
                "provider_id",
                "body",
            ],
        )
    return result


def sms_delete_old() -> int:
    """Housekeeping: drop messages older than SMS_RETENTION_DAYS (their
    bodies are blank already; the rest is the sending log)."""
    cutoff = timezone.now() - timedelta(days=settings.SMS_RETENTION_DAYS)
    return delete_in_batches(SmsMessage.objects.filter(created_at__lt=cutoff))
