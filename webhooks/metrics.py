"""The webhooks app's metrics (SPEC §11; see core.metrics).

Counted by the sender in the worker, once each attempt's record committed:
attempts by outcome, and deliveries that gave up (`failed`).

Read at scrape time, so that the web's /metrics shows them whichever worker
sent: deliveries pending and deliveries failed (each from a partial index of
those rows only; failed ones stay until WEBHOOK_RETENTION_DAYS), and
subscriptions whose every attempt has been failing, and since when.
"""

from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import Counter

from core.backlog import outbox_readings
from core.metrics import Reading, age_seconds

from .models import Delivery, Subscription

ATTEMPTS = Counter(
    "webhook_delivery_attempts_total",
    "Webhook deliveries sent, by outcome (success: a 2xx in time; failure: anything else).",
    ["outcome"],
)
GAVE_UP = Counter(
    "webhook_deliveries_failed_total",
    "Webhook deliveries that gave up (retries exhausted, or 410 Gone): status failed.",
)
for _outcome in ("success", "failure"):
    ATTEMPTS.labels(_outcome)


def count_attempt(*, succeeded: bool, gave_up: bool) -> None:
    """One attempt was recorded in the current transaction: count it once it commits."""

    def record():
        ATTEMPTS.labels("success" if succeeded else "failure").inc()
        if gave_up:
            GAVE_UP.inc()

    transaction.on_commit(record, robust=True)


def deliveries_backlog() -> list[Reading]:
    """Pending deliveries (due or waiting for a retry) and the oldest one's
    age; failed deliveries; failing subscriptions."""
    pending = Delivery.objects.filter(status=Delivery.Status.PENDING).aggregate(
        count=Count("id"), oldest=Min("created_at")
    )
    failed = Delivery.objects.filter(status=Delivery.Status.FAILED).count()
    now = timezone.now()
    failing = Subscription.objects.filter(is_active=True, failing_since__isnull=False).aggregate(
        count=Count("id"), since=Min("failing_since")
    )
    return [
        *outbox_readings("webhook_deliveries", pending["count"], pending["oldest"], now),
        Reading(
            "outbox_failed",
            "Rows of an outbox that gave up and wait for a person (webhook_deliveries).",
            failed,
            {"outbox": "webhook_deliveries"},
        ),
        Reading(
            "webhook_subscriptions_failing",
            "Active subscriptions whose every attempt has failed since their last success.",
            failing["count"],
        ),
        Reading(
            "webhook_subscription_failing_seconds",
            "Seconds the longest-failing active subscription has been failing (0: none).",
            age_seconds(failing["since"], now),
        ),
    ]
