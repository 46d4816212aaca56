"""Liveness and readiness (SPEC §3).

`/healthz` says the process is up and touches nothing else. `/readyz` checks
the database and the Celery broker, each bounded by a short timeout, and names
the check that failed in a 503. It also reports each read replica (SPEC §12)
without failing on one: reads skip a replica that is down or lagging.
"""

import logging
from pathlib import Path

import redis
from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from . import replicas
from .errors import error_document

logger = logging.getLogger(__name__)


def check_database(alias: str = "default") -> None:
    """Raises when the database does not answer a trivial query. The connect
    timeout is set in DATABASES (DATABASE_CONNECT_TIMEOUT)."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    """Raises when the Celery broker cannot be reached."""
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://", "unix://")):
        timeout = settings.REDIS_TIMEOUT
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    elif url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        if not folder.is_dir():
            raise OSError(f"broker folder {folder} is missing")
    else:
        from celery import current_app

        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.REDIS_TIMEOUT)


CHECKS = {"database": check_database, "broker": check_broker}


@csrf_exempt  # a POST gets 405, not a CSRF failure
@never_cache
@require_safe
def healthz(request):
    return JsonResponse({"status": "ok"})


@csrf_exempt
@never_cache
@require_safe
def readyz(request):
    results, failed = {}, []
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure of a dependency means "not ready"
            logger.warning("Readiness check %s failed: %s", name, exc)
            results[name] = "unavailable"
            failed.append(name)
        else:
            results[name] = "ok"
    report = {"checks": results}
    if settings.DATABASE_REPLICAS:
        report["replicas"] = replica_report()
    if not failed:
        return JsonResponse({"status": "ok", **report})
    body = error_document(
        [("service_unavailable", f"The {name} check failed.", name) for name in failed], status=503
    )
    return JsonResponse({"status": "unavailable", **report, **body}, status=503)


def replica_report() -> dict:
    """Each replica as this process sees it (checked again when the last check
    is older than REPLICA_CHECK_SECONDS, so a probe never waits on every
    replica's connect timeout): `ok` with its lag in seconds, or `skipped`
    with the reason (reads go to the primary meanwhile)."""
    report = {}
    for alias in settings.DATABASE_REPLICAS:
        state = replicas.replica_state(alias)
        entry = {"status": "ok" if state.usable else "skipped", "lag_seconds": state.lag_seconds}
        if not state.usable:
            entry["reason"] = state.reason
        report[alias] = entry
    return report
