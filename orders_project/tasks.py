"""Project-wide Celery tasks (SPEC §7). Listed in CELERY_IMPORTS: this package
is not an installed app, so autodiscovery would not find it."""

import logging

from celery import shared_task

from accounts.services import otp_delete_expired, tokens_delete_expired
from orders.idempotency import idempotency_delete_expired

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def housekeeping() -> dict:
    """Drop what has expired: idempotency records past their TTL, one-time
    login codes, and simplejwt's expired outstanding and blacklisted tokens.
    Daily, from the schedule in the database; running it twice changes nothing more."""
    deleted = {
        "idempotency_records": idempotency_delete_expired(),
        "one_time_codes": otp_delete_expired(),
        "expired_tokens": tokens_delete_expired(),
    }
    logger.info("Housekeeping deleted %s", deleted)
    return deleted
