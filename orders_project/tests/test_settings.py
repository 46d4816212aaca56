"""Settings come from the environment; production refuses to start unsafely."""

import pytest

from core.testing import run_python, settings_of

pytestmark = pytest.mark.slow

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-long-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "orders.example.com",
}


def show(setting: str, **env) -> str:
    return settings_of(env, setting)[setting]


def test_production_refuses_to_start_without_a_secret_key():
    result = run_python(["manage.py", "check"], DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_check_deploy_is_clean_with_production_values():
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_local_defaults_need_no_configuration(tmp_path):
    env = {"DEBUG": "1", "DATABASE_URL": "", "REDIS_URL": ""}
    assert show("DATABASES['default']['ENGINE']", **env) == "'django.db.backends.sqlite3'"
    assert show("CELERY_BROKER_URL", **env) == "'filesystem://localhost//'"
    assert "LocMemCache" in show("CACHES['default']['BACKEND']", **env)
    assert show("EMAIL_BACKEND", **env) == "'django.core.mail.backends.console.EmailBackend'"


def test_database_redis_and_cors_come_from_the_environment():
    env = {
        **PRODUCTION,
        "DATABASE_URL": "postgres://u:p@db.internal:5433/shop",
        "REDIS_URL": "redis://cache.internal:6380/2",
        "CORS_ALLOWED_ORIGINS": "https://shop.example.com,https://app.example.com",
    }
    assert show("DATABASES['default']['HOST']", **env) == "'db.internal'"
    assert show("DATABASES['default']['OPTIONS']['connect_timeout']", **env) == "2"
    assert show("CELERY_BROKER_URL", **env) == "'redis://cache.internal:6380/2'"
    assert show("CACHES['default']['LOCATION']", **env) == "'redis://cache.internal:6380/2'"
    assert show("CORS_ALLOWED_ORIGINS", **env) == (
        "['https://shop.example.com', 'https://app.example.com']"
    )
    assert show("PASSWORD_HASHERS[0]", **env) == (
        "'django.contrib.auth.hashers.Argon2PasswordHasher'"
    )


def test_the_celery_app_uses_the_database_scheduler_and_finds_tasks():
    result = run_python(
        [
            "-c",
            "import django; django.setup(); from orders_project.celery import app; "
            "app.loader.import_default_modules(); "
            "print(app.main, app.conf.beat_scheduler, app.conf.task_acks_late, "
            "*sorted(name for name in app.tasks if not name.startswith('celery.')))",
        ],
        DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "orders_project",
        "django_celery_beat.schedulers:DatabaseScheduler",
        "True",
        "accounts.tasks.housekeeping",
        "accounts.tasks.sms_send",
        "accounts.tasks.sms_sweep",
        "backups.tasks.copy_orders",
        "backups.tasks.export_orders",
        "inventory.tasks.send_low_stock_report",
        "orders.tasks.housekeeping",
        "orders.tasks.process_pending_orders",
        "orders.tasks.send_order_emails",
        "webhooks.tasks.deliver_webhooks",
        "webhooks.tasks.housekeeping",
    ]
