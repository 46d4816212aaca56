"""The orders app's periodic tasks (SPEC §7), created after `migrate`
(see `core.schedules`) and edited by staff in the admin afterwards."""

from django.conf import settings

from core.schedules import Schedule

PROCESSING = "Process pending orders"
HOUSEKEEPING = "Housekeeping: orders"


def schedules() -> list[Schedule]:
    interval = max(int(settings.ORDER_PROCESSING_INTERVAL), 1)
    return [
        Schedule(
            name=PROCESSING,
            task="orders.tasks.process_pending_orders",
            description="Moves pending orders to processing and mails the confirmations.",
            every_seconds=interval,
            expire_seconds=interval,
        ),
        Schedule(
            name=HOUSEKEEPING,
            task="orders.tasks.housekeeping",
            description="Drops idempotency records past their TTL.",
            daily_at=(3, 30),
            expire_seconds=12 * 3600,
        ),
    ]
