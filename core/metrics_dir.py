"""Where a Celery worker's processes write their metrics (prometheus-client's
multi-process mode), decided before anything imports prometheus_client.

prometheus-client picks its storage once, when it is first imported: with
PROMETHEUS_MULTIPROC_DIR set, memory-mapped files in that directory; without,
the process's memory. A prefork worker runs tasks in child processes, so only
files let the worker's own metrics endpoint (CELERY_METRICS_PORT) add up the
children's counts. This module imports nothing of prometheus_client, so
`orders_project/celery.py` can call it first thing.

gunicorn has its own directory, set up in gunicorn.conf.py.
"""

import glob
import os
import tempfile

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PORT_ENV = "CELERY_METRICS_PORT"


def worker_metrics_dir(port: str) -> str:
    """The directory of the worker serving metrics on `port`: one per port, so
    two workers on one host never share one, and the same on every start, so
    a restart does not leave an old directory behind."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()  # noqa: S108
    return os.path.join(base, f"orders-celery-metrics-{port}")


def prepare_worker_metrics_dir() -> str | None:
    """With CELERY_METRICS_PORT set and no PROMETHEUS_MULTIPROC_DIR, point
    the latter at the worker's directory (created if missing). Returns the
    directory in use, or None without CELERY_METRICS_PORT."""
    port = os.environ.get(PORT_ENV, "").strip()
    if not port:
        return None
    path = os.environ.get(MULTIPROC_ENV) or worker_metrics_dir(port)
    os.makedirs(path, exist_ok=True)
    os.environ[MULTIPROC_ENV] = path
    return path


def clear_metrics_dir(path: str, *, keep_pid: int | None = None) -> None:
    """Delete the metric files a previous run left in `path` (all but those of
    `keep_pid`, the process calling, which may have opened its own already)."""
    for name in glob.glob(os.path.join(path, "*.db")):
        if keep_pid is None or not name.endswith(f"_{keep_pid}.db"):
            os.remove(name)
