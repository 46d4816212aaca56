"""The webhooks app's periodic tasks, created after `migrate` (see
`core.schedules`) and edited by staff in the admin afterwards."""

from django.conf import settings

from core.schedules import Schedule

SWEEP = "Webhooks: deliver"
HOUSEKEEPING = "Housekeeping: webhooks"


def schedules() -> list[Schedule]:
    every = max(int(settings.WEBHOOK_SWEEP_SECONDS), 1)
    return [
        Schedule(
            name=SWEEP,
            task="webhooks.tasks.deliver_webhooks",
            description="Sends webhook deliveries that are due (retries, and events whose "
            "after-commit kick was lost).",
            every_seconds=every,
            expire_seconds=every,
        ),
        Schedule(
            name=HOUSEKEEPING,
            task="webhooks.tasks.housekeeping",
            description="Drops webhook deliveries older than WEBHOOK_RETENTION_DAYS.",
            daily_at=(3, 45),
            expire_seconds=12 * 3600,
        ),
    ]
