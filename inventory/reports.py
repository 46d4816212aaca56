"""The daily low-stock report mailed to staff (SPEC §7)."""

import logging
from contextlib import suppress

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User

from .selectors import product_low_stock

logger = logging.getLogger(__name__)

# The e-mail lists at most this many products, the lowest first; the rest are counted.
REPORT_MAX_ROWS = 200


def low_stock_report_recipients() -> list[str]:
    """LOW_STOCK_REPORT_RECIPIENTS if set, else every active staff member."""
    if settings.LOW_STOCK_REPORT_RECIPIENTS:
        return list(settings.LOW_STOCK_REPORT_RECIPIENTS)
    return list(
        User.objects.filter(is_staff=True, is_active=True, email__isnull=False)
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
    )


def low_stock_report_send(*, force: bool = False) -> int:
    """Mail staff the active products at or under their low-stock threshold.

    Sends nothing when no product is low. At most one report a day: a second
    run the same day (two beats, a retried task) sends nothing unless `force`.
    Returns the number of products reported."""
    products = product_low_stock()
    count = products.count()
    recipients = low_stock_report_recipients()
    if not count or not recipients:
        logger.info("Low-stock report: %d products low, %d recipients", count, len(recipients))
        return 0
    today = timezone.localdate()
    once_key = f"low-stock-report:{today.isoformat()}"
    try:
        first_today = cache.add(once_key, 1, timeout=36 * 3600) or force
    except Exception:  # the cache is down: better twice than not at all
        logger.warning("Cache unavailable; sending the low-stock report anyway", exc_info=True)
        first_today = True
    if not first_today:
        logger.info("Low-stock report for %s already sent", today)
        return 0
    context = {
        "date": today,
        "count": count,
        "products": products.by_available()[:REPORT_MAX_ROWS],
        "more": max(count - REPORT_MAX_ROWS, 0),
    }
    try:
        send_mail(
            subject=" ".join(render_to_string("emails/low_stock_subject.txt", context).split()),
            message=render_to_string("emails/low_stock.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
        )
    except Exception:
        with suppress(Exception):  # the cache may be down too: the mail error is the one to raise
            cache.delete(once_key)  # let the retry send it
        raise
    logger.info("Low-stock report: %d products, mailed to %d staff", count, len(recipients))
    return count
