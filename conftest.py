import io
import logging
import os

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.tests.factories import StaffFactory, UserFactory
from orders_project.request_id import RequestIdLogFilter


def pytest_collection_modifyitems(config, items):
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    if os.environ.get("REQUIRE_POSTGRES"):
        # CI: the race tests must run, never be skipped into a green run.
        raise pytest.UsageError(f"REQUIRE_POSTGRES is set but the database is {connection.vendor}")
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle counters live in the cache (Redis in CI): each test starts at zero.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return StaffFactory()


@pytest.fixture
def auth_client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def superuser(db):
    return StaffFactory(email="root@example.com", is_superuser=True)


@pytest.fixture
def admin_client(client, superuser):
    """A Django test client logged in to the admin as a superuser."""
    client.force_login(superuser)
    return client


@pytest.fixture
def log_lines(settings):
    """Log output formatted as the project's console handler formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(logging.Formatter(settings.LOGGING["formatters"]["default"]["format"]))
    loggers = [logging.getLogger(), logging.getLogger("django")]
    for logger in loggers:
        logger.addHandler(handler)
    yield lambda: stream.getvalue().splitlines()
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
def celery_eager():
    """Tasks run inline where they are enqueued (no broker, no worker): what a
    task sends after commit happens before the test goes on."""
    from orders_project.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved
