"""Once created the periodic tasks of SPEC §7 for every app. Each app now
declares its own (`<app>/schedules.py`) and creates them after `migrate`
(`core.schedules`); this migration is kept, empty, as a node of the history."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_order_email"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = []
