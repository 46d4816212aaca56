"""Celery tasks of the webhooks app. Deliveries have the `webhooks` queue to
themselves (CELERY_TASK_ROUTES): a slow receiver never delays order
processing. Housekeeping goes on `maintenance`."""

import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task
def deliver_webhooks() -> dict:
    """Fan out new events and send what is due. Run after events commit (the
    kick) and by beat every WEBHOOK_SWEEP_SECONDS, which catches kicks that
    were lost and deliveries whose retry time has come."""
    result = services.webhooks_run()
    if result["sent"]:
        logger.info("Webhooks: %s", result)
    return result


@shared_task
def housekeeping() -> dict:
    """Drop deliveries older than WEBHOOK_RETENTION_DAYS (daily)."""
    deleted = {"deliveries": services.deliveries_delete_old()}
    logger.info("Webhooks housekeeping deleted %s", deleted)
    return deleted
