"""E-mails to customers about their orders, through an outbox.

A change that owes the customer an e-mail writes an `OrderEmail` row in its own
transaction (`order_emails_queue`); after commit a Celery task sends it
(`order_emails_send`; the task and its dispatch are in `orders.tasks`, which
imports this module, never the other way round). A send that fails is retried
with a growing backoff, and rows whose task was lost (a broker that was down, a
worker that died) are found again by `order_emails_due` on the next processing
run. Sending locks the row and stamps `sent_at`, so a second task for the same
row sends nothing: a customer gets each e-mail once, or at worst twice if a
worker dies between handing a message to the mail server and committing.
"""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from .models import Order, OrderEmail

logger = logging.getLogger(__name__)

# After this many failed sends an e-mail is given up (it stays unsent, with its error).
MAX_ATTEMPTS = 8
# Rows are sent in chunks of this many per task (one mail-server connection each).
SEND_CHUNK = 200
# An unsent row is picked up again by the sweep only this long after it was due,
# so that the task enqueued when it was written has had its chance first.
SWEEP_GRACE = timedelta(minutes=1)

TEMPLATES = {
    OrderEmail.Kind.CONFIRMATION: (
        "emails/order_confirmation_subject.txt",
        "emails/order_confirmation.txt",
    ),
}


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed send: 30 s, doubling, at most 30 min."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 1800))


def order_emails_queue(*, orders: Iterable[Order], kind: str) -> list[int]:
    """Record, in the caller's transaction, that each order's customer is owed
    an e-mail of `kind`. Returns the rows' ids, for the caller to hand to
    `orders.tasks.dispatch_order_emails` once the transaction has committed.
    A customer without an e-mail address (signed in by SMS) is owed none.
    The orders come with their customer loaded (select_related)."""
    rows = OrderEmail.objects.bulk_create(
        OrderEmail(order=order, kind=kind) for order in orders if order.customer.email
    )
    return [row.pk for row in rows]


def order_emails_due(*, limit: int = 5000) -> list[int]:
    """Unsent rows whose (re)try time has passed, oldest first: those whose task
    was lost, or whose retries ran out in Celery before they ran out here."""
    return list(
        OrderEmail.objects.filter(
            sent_at__isnull=True,
            attempts__lt=MAX_ATTEMPTS,
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


def _message(row: OrderEmail, connection) -> EmailMessage:
    subject_template, body_template = TEMPLATES[row.kind]
    context = {"order": row.order}
    subject = " ".join(render_to_string(subject_template, context).split())
    return EmailMessage(
        subject=subject,
        body=render_to_string(body_template, context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[row.order.customer.email],
        connection=connection,
    )


def _failed(row: OrderEmail, error: Exception, result: SendResult) -> None:
    """Record a failed send on `row` and when to try it again."""
    row.attempts += 1
    row.last_error = f"{type(error).__name__}: {error}"[:500]
    delay = retry_delay(row.attempts)
    row.next_attempt_at = timezone.now() + delay
    if row.attempts < MAX_ATTEMPTS:
        result.failed.append(row.pk)
        result.retry_in = min(result.retry_in or delay, delay)
    else:
        logger.error("Giving up on %s after %d attempts: %s", row, row.attempts, row.last_error)


def order_emails_send(*, ids: Sequence[int]) -> SendResult:
    """Send the rows among `ids` that are still unsent and not given up.

    Rows another worker is sending right now are skipped (they are locked), so
    two tasks for the same rows send each one once. A failure is recorded on the
    row with the time of its next try; the other rows are still sent."""
    result = SendResult()
    with transaction.atomic():
        rows = list(
            OrderEmail.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=ids, sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS)
            .select_related("order__customer")
            .prefetch_related("order__lines")
            .order_by("pk")
        )
        if not rows:
            return result
        connection = get_connection(fail_silently=False)
        try:
            connection.open()  # one connection for the chunk
        except Exception as error:  # the mail server is unreachable: every row waits
            logger.warning("Cannot reach the mail server", exc_info=True)
            for row in rows:
                _failed(row, error, result)
        else:
            try:
                for row in rows:
                    try:
                        _message(row, connection).send()
                    except Exception as error:  # the mail server, the network, a template
                        logger.warning("Sending %s failed", row, exc_info=True)
                        _failed(row, error, result)
                    else:
                        row.attempts += 1
                        row.sent_at = timezone.now()
                        result.sent.append(row.pk)
            finally:
                try:
                    connection.close()
                except Exception:  # what was sent is sent; a failed QUIT changes nothing
                    logger.warning("Closing the mail server connection failed", exc_info=True)
        OrderEmail.objects.bulk_update(
            rows, ["attempts", "sent_at", "next_attempt_at", "last_error"]
        )
    return result
