"""Celery tasks of the orders app. They only call services; see SPEC §7.

Every task here is safe to run twice and at the same time as itself: the
services lock what they change and re-check it under the lock. (Late
acknowledgement is the project-wide default, CELERY_TASK_ACKS_LATE.)
"""

import logging
from collections.abc import Sequence

from celery import shared_task

from . import emails, processing
from .idempotency import idempotency_delete_expired

logger = logging.getLogger(__name__)


def dispatch_order_emails(ids: Sequence[int]) -> bool:
    """Enqueue the sending of these `OrderEmail` rows, in chunks. Call it after
    the rows have committed. Never raises: with the broker down the rows stay
    unsent and the next processing run finds them (`emails.order_emails_due`)."""
    try:
        for start in range(0, len(ids), emails.SEND_CHUNK):
            send_order_emails.apply_async(
                args=[list(ids[start : start + emails.SEND_CHUNK])],
                retry_policy={"max_retries": 1, "interval_start": 0.2},
            )
    except Exception:
        logger.warning(
            "Could not enqueue %d order e-mails; the next processing run will send them",
            len(ids),
            exc_info=True,
        )
        return False
    return True


@shared_task
def process_pending_orders(batch_size: int | None = None) -> dict:
    """Move pending orders to processing (every ORDER_PROCESSING_INTERVAL
    seconds, from the schedule in the database), hand each batch's
    confirmation e-mails to a worker once it committed, then re-send any
    e-mail whose sending task was lost."""
    run = processing.process_pending_orders(
        batch_size=batch_size,
        after_batch=lambda batch: batch.emails and dispatch_order_emails(batch.emails),
    )
    if run.processed or run.failed:
        logger.info(
            "Processed %d pending orders, %d failed, in %d batches%s",
            run.processed,
            run.failed,
            run.batches,
            "; more are left for the next run" if run.more else "",
        )
    due = emails.order_emails_due()
    if due:
        logger.info("Re-sending %d order e-mails that were not sent", len(due))
        dispatch_order_emails(due)
    return {"processed": run.processed, "failed": run.failed, "more": run.more}


@shared_task(bind=True, max_retries=emails.MAX_ATTEMPTS)
def send_order_emails(self, email_ids: list[int]) -> dict:
    """Send these outbox rows; retry the ones that failed, with backoff."""
    result = emails.order_emails_send(ids=email_ids)
    if result.failed and self.request.retries < self.max_retries:
        raise self.retry(args=[result.failed], countdown=result.retry_in.total_seconds())
    return {"sent": len(result.sent), "failed": len(result.failed)}


@shared_task
def housekeeping() -> dict:
    """Drop the orders app's expired records: idempotency records past their
    TTL. Daily, from the schedule in the database; running it twice changes
    nothing more."""
    deleted = {"idempotency_records": idempotency_delete_expired()}
    logger.info("Orders housekeeping deleted %s", deleted)
    return deleted
