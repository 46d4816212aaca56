"""Celery tasks of the inventory app; they only call services (SPEC §7)."""

from celery import shared_task

from .reports import low_stock_report_send


@shared_task(autoretry_for=(OSError,), retry_backoff=60, max_retries=5)
def send_low_stock_report(force: bool = False) -> int:
    """Mail staff the low-stock products (daily, from the schedule in the database)."""
    return low_stock_report_send(force=force)
