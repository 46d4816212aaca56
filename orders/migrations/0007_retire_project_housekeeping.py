"""The project-wide housekeeping task (`orders_project.tasks.housekeeping`)
became one per app (`accounts.tasks.housekeeping`, `orders.tasks.housekeeping`),
created after `migrate` by each app. A database made before that still has
the old row, which points at a task that no longer exists: drop it."""

from django.db import migrations

OLD_TASK = "orders_project.tasks.housekeeping"


def drop_old_housekeeping(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task=OLD_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0006_order_total_index"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(drop_old_housekeeping, migrations.RunPython.noop)]
