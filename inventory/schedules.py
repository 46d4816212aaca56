"""The inventory app's periodic tasks (SPEC §7), created after `migrate`
(see `core.schedules`) and edited by staff in the admin afterwards."""

from core.schedules import Schedule

LOW_STOCK = "Low-stock report"


def schedules() -> list[Schedule]:
    return [
        Schedule(
            name=LOW_STOCK,
            task="inventory.tasks.send_low_stock_report",
            description="Mails staff the products at or under their low-stock threshold.",
            daily_at=(7, 0),
            expire_seconds=12 * 3600,
        ),
    ]
