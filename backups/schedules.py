"""The backups app's periodic tasks, created after `migrate` (see
`core.schedules`) and edited by staff in the admin afterwards."""

from django.conf import settings

from core.schedules import Schedule

COPIES = "Backups: copy orders"
EXPORT = "Backups: daily export"


def schedules() -> list[Schedule]:
    every = max(int(settings.BACKUP_COPY_SECONDS), 1)
    return [
        Schedule(
            name=COPIES,
            task="backups.tasks.copy_orders",
            description="Writes orders/{id}.json to the backup storage for every order changed.",
            every_seconds=every,
            expire_seconds=every,
        ),
        Schedule(
            name=EXPORT,
            task="backups.tasks.export_orders",
            description="Exports every order to exports/orders-<UTC date-time>.jsonl.gz.",
            daily_at=(2, 0),
            expire_seconds=12 * 3600,
        ),
    ]
