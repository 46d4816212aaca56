"""gunicorn settings; each can be overridden with GUNICORN_* variables.

Sync workers, one per CPU core, no threads: the figures in
docs/performance.md were taken with this. On 2 cores, 2 workers beat 3 or 4
(more processes only add CPU per request: 7.7 -> 9.4 ms for a create) and
threads lost outright (2 x 4: create -20 %, detail -50 %): the app is CPU-bound
and its database round trips are short.
"""

import glob
import os
import shutil
import tempfile

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", os.cpu_count() or 2))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# The workers' heartbeat files on tmpfs (gunicorn's own advice for
# containers): a slow disk cannot stall them. gunicorn creates them itself.
SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = SHM if os.path.isdir(SHM) else None
# No gunicorn access log: Django writes one line per request, with its request id.
accesslog = None

# --- Metrics: every worker's numbers in one /metrics (docs/operations.md) --------------
#
# prometheus-client's multi-process mode: each worker writes its counters to
# memory-mapped files in PROMETHEUS_MULTIPROC_DIR and /metrics adds up all the
# files. The variable must be set before a worker imports the app (here, in
# the master, which the workers inherit it from). Unset: a fresh directory of
# this server's own, removed when it stops.
# (A reload on SIGHUP reads this file again: the marker says the directory is ours.)
_OWNED = "ORDERS_GUNICORN_METRICS_DIR"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[_OWNED] = tempfile.mkdtemp(
        prefix="orders-metrics-", dir=SHM if os.path.isdir(SHM) else None
    )


def on_starting(server):
    """Start counting from zero: a directory given to us may hold the files of
    a previous run, whose workers are gone."""
    for name in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(name)


def child_exit(server, worker):
    """A worker ended (replaced after a timeout, or at shutdown): its counts
    stay in the total; its live gauges are dropped."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get(_OWNED) == os.environ["PROMETHEUS_MULTIPROC_DIR"]:
        shutil.rmtree(os.environ[_OWNED], ignore_errors=True)


# --- JSON logs (LOG_FORMAT=json): gunicorn's own lines too ------------------------------

if os.environ.get("LOG_FORMAT", "").lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "core.logformat.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s",
            }
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }
