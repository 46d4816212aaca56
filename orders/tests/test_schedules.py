"""The schedules of SPEC §7 live in the database, created by a migration."""

import importlib

import pytest
from django.apps import apps
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from orders_project.celery import app

pytestmark = pytest.mark.django_db

migration = importlib.import_module("orders.migrations.0004_periodic_tasks")


def registered_tasks() -> set[str]:
    app.loader.import_default_modules()
    return set(app.tasks)


def test_the_migration_schedules_the_three_tasks_of_the_spec(settings):
    tasks = {task.name: task for task in PeriodicTask.objects.all()}
    processing = tasks["Process pending orders"]
    assert processing.task == "orders.tasks.process_pending_orders"
    assert (processing.interval.every, processing.interval.period) == (
        settings.ORDER_PROCESSING_INTERVAL,
        "seconds",
    )
    assert processing.expire_seconds == settings.ORDER_PROCESSING_INTERVAL
    report, housekeeping = tasks["Low-stock report"], tasks["Housekeeping"]
    assert report.task == "inventory.tasks.send_low_stock_report"
    assert (report.crontab.hour, report.crontab.minute) == ("7", "0")
    assert housekeeping.task == "orders_project.tasks.housekeeping"
    assert (housekeeping.crontab.hour, housekeeping.crontab.minute) == ("3", "30")
    for task in tasks.values():
        assert task.enabled
        assert task.task in registered_tasks(), task.task


def test_the_processing_interval_comes_from_the_environment_when_created(settings):
    PeriodicTask.objects.all().delete()
    settings.ORDER_PROCESSING_INTERVAL = 15
    migration.create_schedules(apps, None)
    task = PeriodicTask.objects.get(name="Process pending orders")
    assert task.interval.every == 15


def test_a_schedule_edited_in_the_admin_is_kept_when_the_migration_runs_again(settings):
    task = PeriodicTask.objects.get(name="Process pending orders")
    task.enabled = False
    task.save()
    migration.create_schedules(apps, None)
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
