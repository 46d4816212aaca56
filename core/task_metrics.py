"""Celery task metrics, and the worker's own metrics endpoint
(CELERY_METRICS_PORT).

`orders_project/celery.py` calls `task_started` / `task_finished` from
Celery's task_prerun / task_postrun signals, and starts the endpoint when the
worker is ready.

- Runs by outcome (`celery_task_runs_total`) are what SPEC §11 asks the web's
  `/metrics` to show, and the web cannot read a worker's memory on another
  host: each run adds one to a row of `core.models.TaskRuns` (one upsert, in
  its own statement), and the web reads the table when scraped.
- Durations and the last success are per worker: a prefork worker's children
  each write their own files in the worker's multi-process directory
  (core.metrics_dir); the endpoint, in the parent, adds them up. Whatever
  else a task counts in the worker (orders moved by the processing run,
  webhook attempts) is shown there too.
"""

import json
import logging
import os
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.db import Error, connection, transaction
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, Histogram
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector

from .metrics_dir import MULTIPROC_ENV, clear_metrics_dir

logger = logging.getLogger(__name__)

# Seconds: from a sent e-mail (tens of ms) to a processing run near its
# 300 s soft time limit.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

TASK_DURATION = Histogram(
    "celery_task_duration_seconds",
    "Time a Celery task run took, by task.",
    ["task"],
    buckets=DURATION_BUCKETS,
)
TASK_LAST_SUCCESS = Gauge(
    "celery_task_last_success_timestamp_seconds",
    "Unix time of the last successful run of a task in this worker.",
    ["task"],
    multiprocess_mode="max",
)

_STARTED = "metrics_started_at"


def task_started(task) -> None:
    """task_prerun: note when the run began (on the run's own request context)."""
    if task is not None:
        setattr(task.request, _STARTED, time.perf_counter())


RUNS_HELP = "Celery task runs that ended on any worker, by task and final state."


def record_task_run(task: str, state: str) -> None:
    """Add one run of `task` that ended in `state` to the shared count. A
    database that cannot take it costs the count, never the task: logged."""
    from .models import TaskRuns

    table = connection.ops.quote_name(TaskRuns._meta.db_table)
    sql = (
        f"INSERT INTO {table} (task, state, count) VALUES (%s, %s, 1) "  # noqa: S608 (our table name)
        f"ON CONFLICT (task, state) DO UPDATE SET count = {table}.count + 1"
    )
    try:
        # A savepoint when the run is eager inside a transaction (tests,
        # CELERY_TASK_ALWAYS_EAGER): a failure here must not spoil it.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [task[:200], state[:20]])
    except Error:  # the database down, or the connection a failed task left broken
        logger.warning("Could not count a run of %s (%s)", task, state, exc_info=True)


def task_runs():
    """`celery_task_runs_total` for the web's /metrics: the shared count."""
    from .metrics import Reading
    from .models import TaskRuns

    for task, state, count in TaskRuns.objects.values_list("task", "state", "count"):
        yield Reading(
            "celery_task_runs", RUNS_HELP, count, {"task": task, "state": state}, kind="counter"
        )


def task_finished(task, state: str | None) -> None:
    """task_postrun: count the run by its final state and time it."""
    name = getattr(task, "name", None) or "unknown"
    record_task_run(name, (state or "unknown").lower())
    started = getattr(getattr(task, "request", None), _STARTED, None)
    if started is not None:
        TASK_DURATION.labels(name).observe(time.perf_counter() - started)
    if state == "SUCCESS":
        TASK_LAST_SUCCESS.labels(name).set(time.time())


def worker_starting() -> None:
    """worker_init, before the pool starts: forget the files a previous run of
    this worker left (its counters start again from zero, which Prometheus
    reads as a restart) but not this process's own."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        clear_metrics_dir(path, keep_pid=os.getpid())


def process_exited(pid: int) -> None:
    """A pool process ended: its counters stay counted; its live gauges go."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # one line per scrape would drown the log
        pass


def _registry() -> CollectorRegistry:
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def metrics_app(registry: CollectorRegistry):
    """The endpoint as a WSGI app: `/metrics` for scrapers that METRICS_TOKEN
    or METRICS_ALLOWED_IPS let in (the client's own address: nothing proxies
    a worker), the JSON 404 of the web for anyone and anything else."""
    from .errors import error_body
    from .metrics import scraper_allowed

    exposition = make_wsgi_app(registry)
    not_found = json.dumps(error_body("not_found", "Not found.", status=404)).encode()

    def app(environ, start_response):
        allowed = scraper_allowed(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR"))
        if allowed and environ.get("PATH_INFO", "").rstrip("/") == "/metrics":
            return exposition(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [not_found]

    return app


def serve(port: int, address: str = "0.0.0.0") -> ThreadingWSGIServer:  # noqa: S104
    """Serve the worker's metrics on `address:port` from a daemon thread."""
    server = make_server(
        address, port, metrics_app(_registry()), ThreadingWSGIServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    logger.info("Serving the worker's metrics on %s:%s/metrics", address, server.server_port)
    return server
