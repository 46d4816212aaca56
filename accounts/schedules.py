"""The accounts app's periodic tasks (SPEC §7), created after `migrate`
(see `core.schedules`) and edited by staff in the admin afterwards."""

from core.schedules import Schedule

HOUSEKEEPING = "Housekeeping: accounts"


def schedules() -> list[Schedule]:
    return [
        Schedule(
            name=HOUSEKEEPING,
            task="accounts.tasks.housekeeping",
            description="Drops expired one-time codes and expired JWT refresh tokens.",
            daily_at=(3, 30),
            expire_seconds=12 * 3600,
        ),
    ]
