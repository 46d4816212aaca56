"""Celery tasks of the orders app. They only call services; see SPEC §7.

Every task here is safe to run twice and at the same time as itself: the
services lock what they change and re-check it under the lock.
"""

import logging

from celery import shared_task

from . import emails, processing

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def process_pending_orders(batch_size: int | None = None) -> dict:
    """Move pending orders to processing (every ORDER_PROCESSING_INTERVAL
    seconds, from the schedule in the database), then hand over any e-mail
    whose sending task was lost."""
    run = processing.process_pending_orders(batch_size=batch_size)
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
        emails.order_emails_dispatch(due)
    return {"processed": run.processed, "failed": run.failed, "more": run.more}


@shared_task(bind=True, acks_late=True, max_retries=emails.MAX_ATTEMPTS)
def send_order_emails(self, email_ids: list[int]) -> dict:
    """Send these outbox rows; retry the ones that failed, with backoff."""
    result = emails.order_emails_send(ids=email_ids)
    if result.failed and self.request.retries < self.max_retries:
        raise self.retry(args=[result.failed], countdown=result.retry_in.total_seconds())
    return {"sent": len(result.sent), "failed": len(result.failed)}
