"""The periodic tasks of SPEC §7, stored for django-celery-beat's database
scheduler. Created once: after this, staff edit them under Periodic Tasks in
the admin, and a later change of ORDER_PROCESSING_INTERVAL does not overwrite
their edits (change the interval in the admin instead)."""

from django.conf import settings
from django.db import migrations
from django.utils import timezone

PROCESSING = "Process pending orders"
LOW_STOCK = "Low-stock report"
HOUSEKEEPING = "Housekeeping"

# name: (task, crontab hour and minute in TIME_ZONE, description)
DAILY = {
    LOW_STOCK: (
        "inventory.tasks.send_low_stock_report",
        ("7", "0"),
        "Mails staff the products at or under their low-stock threshold.",
    ),
    HOUSEKEEPING: (
        "orders_project.tasks.housekeeping",
        ("3", "30"),
        "Drops expired idempotency records, one-time codes and JWT refresh tokens.",
    ),
}


def create_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")

    interval = max(int(settings.ORDER_PROCESSING_INTERVAL), 1)
    every, _ = IntervalSchedule.objects.get_or_create(every=interval, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=PROCESSING,
        defaults={
            "task": "orders.tasks.process_pending_orders",
            "interval": every,
            # A run that waited a whole interval in the queue is dropped: the next one does its work.
            "expire_seconds": interval,
            "description": "Moves pending orders to processing and mails the confirmations.",
        },
    )
    for name, (task, (hour, minute), description) in DAILY.items():
        daily, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone=settings.TIME_ZONE,
        )
        PeriodicTask.objects.get_or_create(
            name=name,
            defaults={
                "task": task,
                "crontab": daily,
                "expire_seconds": 12 * 3600,
                "description": description,
            },
        )
    # Tell a running beat to reload its schedule (what PeriodicTask.save() does).
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def drop_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[PROCESSING, *DAILY]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_order_email"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, drop_schedules)]
