"""Periodic tasks kept in the database (django-celery-beat), declared by the
app that owns them.

Each app lists its schedules in `<app>/schedules.py` and connects
`connect_schedules` in its `AppConfig.ready()`; after every `migrate` the rows
that do not exist yet are created. An existing row is never changed: once made,
a schedule belongs to staff, who edit it in the admin (*Periodic tasks*), and a
later change of a setting does not overwrite their edit.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models.signals import post_migrate
from django.utils import timezone


@dataclass(frozen=True)
class Schedule:
    name: str  # what staff see under Periodic tasks; the row's identity
    task: str  # the Celery task's registered name
    description: str
    every_seconds: int | None = None  # an interval, or ...
    daily_at: tuple[int, int] | None = None  # ... (hour, minute) every day, in TIME_ZONE
    # A run that waited this long in the queue is dropped: the next one does its work.
    expire_seconds: int | None = None


def ensure_schedules(
    schedules: Iterable[Schedule], *, apps=None, using: str = "default", **kwargs
) -> list[str]:
    """Create the periodic-task rows that are missing; return their names."""
    if apps is None:
        from django.apps import apps
    try:
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    except LookupError:  # django-celery-beat is not migrated in this database
        return []
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    tasks = PeriodicTask.objects.using(using)
    created = []
    for schedule in schedules:
        if tasks.filter(name=schedule.name).exists():
            continue
        when = {}
        if schedule.every_seconds is not None:
            when["interval"], _ = IntervalSchedule.objects.using(using).get_or_create(
                every=max(int(schedule.every_seconds), 1), period="seconds"
            )
        else:
            hour, minute = schedule.daily_at
            when["crontab"], _ = CrontabSchedule.objects.using(using).get_or_create(
                minute=str(minute),
                hour=str(hour),
                day_of_week="*",
                day_of_month="*",
                month_of_year="*",
                timezone=settings.TIME_ZONE,
            )
        tasks.create(
            name=schedule.name,
            task=schedule.task,
            description=schedule.description,
            expire_seconds=schedule.expire_seconds,
            **when,
        )
        created.append(schedule.name)
    if created:
        # Tell a running beat to reload its schedule (what PeriodicTask.save() does).
        PeriodicTasks.objects.using(using).update_or_create(
            ident=1, defaults={"last_update": timezone.now()}
        )
    return created


def connect_schedules(app_config, schedules: Callable[[], Iterable[Schedule]]) -> None:
    """Create `schedules()` after each migrate of `app_config`'s app (called
    late, so settings read at that moment count)."""

    def create(sender, apps=None, using="default", **kwargs):
        ensure_schedules(schedules(), apps=apps, using=using)

    post_migrate.connect(
        create, sender=app_config, weak=False, dispatch_uid=f"{app_config.label}-schedules"
    )
