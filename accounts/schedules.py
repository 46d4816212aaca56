"""The accounts app's periodic tasks (SPEC §7), created after `migrate`
(see `core.schedules`) and edited by staff in the admin afterwards."""

from django.conf import settings

from core.schedules import Schedule

HOUSEKEEPING = "Housekeeping: accounts"
SMS_SWEEP = "SMS: send what is due"


def schedules() -> list[Schedule]:
    sweep = max(int(settings.SMS_SWEEP_SECONDS), 1)
    return [
        Schedule(
            name=SMS_SWEEP,
            task="accounts.tasks.sms_sweep",
            description="Sends the texts (login codes) whose task was lost or whose retry is "
            "due, and gives up those whose code has expired.",
            every_seconds=sweep,
            expire_seconds=sweep,
        ),
        Schedule(
            name=HOUSEKEEPING,
            task="accounts.tasks.housekeeping",
            description="Drops expired one-time codes and expired JWT refresh tokens.",
            daily_at=(3, 30),
            expire_seconds=12 * 3600,
        ),
    ]
