"""Celery tasks of the backups app, on the `maintenance` queue."""

import logging

from celery import shared_task

from core.events import events_publish

from . import copies, exports

logger = logging.getLogger(__name__)


@shared_task
def copy_orders() -> dict:
    """Publish new events (marking order copies due), then write the due
    copies, batch after batch (every BACKUP_COPY_SECONDS, from beat)."""
    while events_publish():
        pass
    copied = failed = 0
    while True:
        report = copies.order_copies_write()
        copied, failed = copied + len(report.copied), failed + len(report.failed)
        if report.failed or len(report.copied) < copies.COPY_BATCH:
            break  # done, or the storage is failing: the next run goes on
    if copied or failed:
        logger.info("Backups: %d order copies written, %d failed", copied, failed)
    return {"copied": copied, "failed": failed}


@shared_task
def export_orders() -> dict:
    """The daily full export (`exports/orders-<UTC date-time>.jsonl.gz`)."""
    export = exports.orders_export()
    logger.info("Backups: exported %d orders to %s", export.count, export.name)
    return {"name": export.name, "count": export.count, "size": export.size}
