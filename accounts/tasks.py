"""Celery tasks of the accounts app; they only call services (SPEC §7)."""

import logging

from celery import shared_task

from .services import otp_delete_expired, tokens_delete_expired

logger = logging.getLogger(__name__)


@shared_task
def housekeeping() -> dict:
    """Drop what has expired: one-time login codes, and simplejwt's expired
    outstanding and blacklisted tokens. Daily, from the schedule in the
    database; running it twice changes nothing more."""
    deleted = {"one_time_codes": otp_delete_expired(), "expired_tokens": tokens_delete_expired()}
    logger.info("Accounts housekeeping deleted %s", deleted)
    return deleted
