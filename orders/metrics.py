"""The orders app's metrics (SPEC §11; see core.metrics).

Counted by the services, once the change has committed: orders placed, and
orders moved, by the status they moved to. A move that rolls back is not
counted, and an idempotent replay never calls the service, so it is not
counted twice. A counter lives in the process that made the change: orders
placed over the API in the web's /metrics, those moved by the processing run
in the worker's endpoint (sum both in Prometheus).

Read at scrape time: the e-mail outbox, and what shows that processing has
stalled (the oldest pending order, against the schedule's interval).
"""

from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from prometheus_client import Counter

from core.backlog import outbox_readings
from core.metrics import Reading, age_seconds

from .emails import MAX_ATTEMPTS
from .models import Order, OrderEmail
from .schedules import PROCESSING
from .statuses import OrderStatus

ORDERS_PLACED = Counter("orders_placed_total", "Orders placed (committed).")
ORDERS_MOVED = Counter(
    "orders_status_changes_total",
    "Orders moved to a status (committed moves), by that status.",
    ["to_status"],
)
ORDERS_FAILED = Counter(
    "orders_failed_total", "Orders moved to failed (processing refused them, or raised)."
)
# Every status from the start, at 0: `increase()` sees the first move too.
for _status in OrderStatus.values:
    ORDERS_MOVED.labels(_status)


def count_placed() -> None:
    """An order was placed in the current transaction: count it once it commits."""
    transaction.on_commit(ORDERS_PLACED.inc, robust=True)


def count_moved(to_status: str, count: int = 1) -> None:
    """`count` orders moved to `to_status` in the current transaction: count
    them once it commits (a rolled-back savepoint drops this too)."""

    def record():
        ORDERS_MOVED.labels(to_status).inc(count)
        if to_status == OrderStatus.FAILED:
            ORDERS_FAILED.inc(count)

    transaction.on_commit(record, robust=True)


def emails_backlog() -> list[Reading]:
    """Confirmation e-mails not sent yet, and those given up after
    MAX_ATTEMPTS: one query over the partial index of unsent rows."""
    unsent = OrderEmail.objects.filter(sent_at__isnull=True).aggregate(
        waiting=Count("id", filter=Q(attempts__lt=MAX_ATTEMPTS)),
        given_up=Count("id", filter=Q(attempts__gte=MAX_ATTEMPTS)),
        oldest=Min("created_at", filter=Q(attempts__lt=MAX_ATTEMPTS)),
    )
    return [
        *outbox_readings("emails", unsent["waiting"], unsent["oldest"], timezone.now()),
        Reading(
            "outbox_emails_given_up",
            f"Order e-mails never sent: {MAX_ATTEMPTS} attempts failed (each row's error "
            "is in the admin).",
            unsent["given_up"],
        ),
    ]


def processing_backlog() -> list[Reading]:
    """Pending orders and the oldest one's age (the status index), and the
    interval of the processing schedule when it is enabled: an order pending
    for more than twice that interval means processing has stalled. While
    staff hold processing (the schedule disabled) there is no interval to
    compare with, and so no alert."""
    pending = Order.objects.filter(status=OrderStatus.PENDING).aggregate(
        count=Count("id"), oldest=Min("created_at")
    )
    readings = [
        Reading("orders_pending", "Orders waiting to be processed.", pending["count"]),
        Reading(
            "orders_pending_oldest_age_seconds",
            "Seconds the oldest pending order has waited (0 when none is pending).",
            age_seconds(pending["oldest"], timezone.now()),
        ),
    ]
    task = (
        PeriodicTask.objects.filter(name=PROCESSING, enabled=True, interval__isnull=False)
        .select_related("interval")
        .first()
    )
    if task is not None:
        readings.append(
            Reading(
                "orders_processing_interval_seconds",
                "How often the enabled processing schedule runs (absent while it is disabled).",
                task.interval.schedule.run_every.total_seconds(),
            )
        )
    return readings
