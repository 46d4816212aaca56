"""The schedules of SPEC §7 live in the database: each app declares its own
(`<app>/schedules.py`) and they are created after `migrate`."""

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from core.schedules import ensure_schedules
from orders import schedules as order_schedules
from orders_project.celery import app

pytestmark = pytest.mark.django_db


def registered_tasks() -> set[str]:
    app.loader.import_default_modules()
    return set(app.tasks)


def test_migrate_schedules_the_tasks_of_the_spec_each_in_its_app(settings):
    tasks = {task.name: task for task in PeriodicTask.objects.all()}
    processing = tasks["Process pending orders"]
    assert processing.task == "orders.tasks.process_pending_orders"
    assert (processing.interval.every, processing.interval.period) == (
        settings.ORDER_PROCESSING_INTERVAL,
        "seconds",
    )
    assert processing.expire_seconds == settings.ORDER_PROCESSING_INTERVAL
    report = tasks["Low-stock report"]
    assert report.task == "inventory.tasks.send_low_stock_report"
    assert (report.crontab.hour, report.crontab.minute) == ("7", "0")
    for app_label in ("accounts", "orders"):
        housekeeping = tasks[f"Housekeeping: {app_label}"]
        assert housekeeping.task == f"{app_label}.tasks.housekeeping"
        assert (housekeeping.crontab.hour, housekeeping.crontab.minute) == ("3", "30")
    deliver = tasks["Webhooks: deliver"]
    assert deliver.task == "webhooks.tasks.deliver_webhooks"
    assert (deliver.interval.every, deliver.interval.period) == (
        settings.WEBHOOK_SWEEP_SECONDS,
        "seconds",
    )
    assert set(tasks) == {
        "Process pending orders",
        "Low-stock report",
        "Housekeeping: accounts",
        "Housekeeping: orders",
        "SMS: send what is due",
        "Webhooks: deliver",
        "Housekeeping: webhooks",
        "Backups: copy orders",
        "Backups: daily export",
    }
    for task in tasks.values():
        assert task.enabled
        assert task.task in registered_tasks(), task.task


def test_the_processing_interval_comes_from_the_environment_when_created(settings):
    PeriodicTask.objects.all().delete()
    settings.ORDER_PROCESSING_INTERVAL = 15
    assert order_schedules.PROCESSING in ensure_schedules(order_schedules.schedules())
    task = PeriodicTask.objects.get(name="Process pending orders")
    assert task.interval.every == 15


def test_a_schedule_edited_in_the_admin_is_kept_when_migrate_runs_again(settings):
    task = PeriodicTask.objects.get(name="Process pending orders")
    task.enabled = False
    task.save()
    settings.ORDER_PROCESSING_INTERVAL = 7
    call_command("migrate", verbosity=0)
    assert PeriodicTask.objects.get(name="Process pending orders").interval.every != 7
    assert PeriodicTask.objects.get(name="Process pending orders").enabled is False


def test_beat_reads_the_schedules_from_the_database():
    scheduler = DatabaseScheduler(app=app, lazy=True)
    # (It leaves out daily tasks that are not due around this hour.)
    schedule = scheduler.all_as_schedule()
    assert schedule["Process pending orders"].task == "orders.tasks.process_pending_orders"


def test_staff_edit_the_schedules_in_the_admin(client):
    from accounts.tests.factories import StaffFactory

    staff = StaffFactory(is_superuser=True)
    client.force_login(staff)
    task = PeriodicTask.objects.get(name="Process pending orders")
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 200
    page = client.get(f"/admin/django_celery_beat/periodictask/{task.pk}/change/")
    assert page.status_code == 200
    assert b"orders.tasks.process_pending_orders" in page.content
