import contextlib
import fcntl
import io
import logging
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.tests.factories import StaffFactory, UserFactory
from core.request_id import RequestIdLogFilter


def pytest_collection_modifyitems(config, items):
    _skip_unless(
        items,
        "postgres",
        available=_database_vendor() == "postgresql",
        required_by="REQUIRE_POSTGRES",
        reason="needs PostgreSQL: set DATABASE_URL=postgres://...",
    )
    _skip_unless(
        items,
        "nginx",
        available=Path(shutil.which("nginx") or "/usr/sbin/nginx").exists(),
        required_by="REQUIRE_NGINX",
        reason="needs nginx: apt-get install nginx-light",
    )
    _skip_unless(
        items,
        "replica",
        available=_database_vendor() == "postgresql",
        required_by="REQUIRE_REPLICA",
        reason="needs PostgreSQL (a streaming replica of it is started): set DATABASE_URL",
    )
    _skip_unless(
        items,
        "browser",
        available=_chromium_installed(),
        required_by="REQUIRE_BROWSER",
        reason="needs Chromium: apt-get install chromium (or set CHROMIUM=/path)",
    )


def _skip_unless(items, marker, *, available, required_by, reason):
    """Skip the tests marked `marker` where what they need is missing; where
    the environment variable `required_by` is set (CI), stop the run instead:
    they must run there, never be skipped into a green run."""
    marked = [item for item in items if marker in item.keywords]
    if available or not marked:
        return
    if os.environ.get(required_by):
        raise pytest.UsageError(f"{required_by} is set but the tests cannot run: {reason}")
    for item in marked:
        item.add_marker(pytest.mark.skip(reason=reason))


def _database_vendor() -> str:
    from django.db import connection

    return connection.vendor


def _chromium_installed() -> bool:
    from pathlib import Path

    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).exists()


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle counters live in the cache (Redis in CI): each test starts at
    # zero. So do the big lists' count estimates, kept in the process.
    # The "Redis is down" pause (core.cache, for the cache and the throttles)
    # starts over too.
    from core import cache as versioned_cache
    from core import pagination

    def reset():
        cache.clear()
        pagination._estimates.clear()
        versioned_cache._down_until[0] = 0.0

    reset()
    yield
    reset()


REPLICA_LOCK = Path(tempfile.gettempdir()) / "orders-pg-replica.lock"


@contextlib.contextmanager
def _replica_lock():
    """One test at a time drives the replica, across pytest-xdist's workers
    (they pause its replay and stop it): an exclusive lock on a file."""
    with REPLICA_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def replica_alias(django_db_setup, django_db_blocker):
    """A real streaming replica of the test server (bin/pg-replica: a
    `pg_basebackup -R` copy on REPLICA_PORT, 5433), registered as the alias
    `replica1` over this worker's test database, built as DATABASE_REPLICA_URLS
    builds one. The `replica` fixture turns replica reads on for a test."""
    import subprocess

    from django.conf import settings
    from django.db import connections

    from core.dbconfig import replica_config

    primary = connections["default"].settings_dict
    port = os.environ.get("REPLICA_PORT", "5433")
    with _replica_lock():
        started = subprocess.run(
            [str(Path(__file__).parent / "bin" / "pg-replica"), "start"],
            env={**os.environ, "PRIMARY_PORT": str(primary["PORT"] or 5432), "REPLICA_PORT": port},
            capture_output=True,
            text=True,
        )
    if started.returncode != 0:
        message = f"bin/pg-replica start failed: {started.stdout}{started.stderr}"
        if os.environ.get("REQUIRE_REPLICA"):
            pytest.fail(message)
        pytest.skip(message)
    alias = "replica1"
    config = replica_config(
        primary,
        {**primary, "HOST": "127.0.0.1", "PORT": port, "OPTIONS": {}, "TEST": {}},
        connect_timeout=2,
    )
    settings.DATABASES[alias] = connections.settings[alias] = config
    yield alias
    connections[alias].close()
    connections.settings.pop(alias, None)
    settings.DATABASES.pop(alias, None)


@pytest.fixture
def replica(replica_alias, settings):
    """Replica reads on, for this test (SPEC §12), with fresh replica states;
    no other test drives the replica meanwhile (_replica_lock)."""
    from core import replicas

    settings.DATABASE_REPLICAS = [replica_alias]
    with _replica_lock():
        replicas.reset_states()
        yield replica_alias
        replicas.reset_states()


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


def _use_broker(app, url: str) -> None:
    """Point the Celery app at `url` (kombu keeps a connection pool per URL)."""
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def hanging_broker():
    """A broker that accepts connections and never answers (`Blackhole`)."""
    from core.testing import Blackhole
    from orders_project.celery import app

    blackhole = Blackhole()
    saved = app.conf.broker_url, app.conf.broker_transport_options
    # The Redis transport's timeouts, as with REDIS_URL (without it, the
    # options are the file-system transport's).
    app.conf.broker_transport_options = {"socket_connect_timeout": 2, "socket_timeout": 5}
    _use_broker(app, f"redis://127.0.0.1:{blackhole.port}/0")
    try:
        yield blackhole
    finally:
        app.conf.broker_transport_options = saved[1]
        _use_broker(app, saved[0])
        blackhole.close()
