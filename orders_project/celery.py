"""The Celery app `orders_project` (`celery -A orders_project worker|beat`).

A task enqueued while a request is handled carries that request's id in a
message header, and the worker binds it while the task runs, so the task's log
lines can be matched with the request's. A task started by beat logs under its
own task id.
"""

import os

from celery import Celery
from celery.signals import (
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
    worker_ready,
)

from core.metrics_dir import prepare_worker_metrics_dir
from core.request_id import (
    clean_request_id,
    get_request_id,
    reset_request_id,
    set_request_id,
)
from core.sentry import tag_request_id

# A worker serving its metrics (CELERY_METRICS_PORT) counts in files that its
# pool processes share: this must be decided before anything imports
# prometheus_client (core.task_metrics below, Django's apps later).
prepare_worker_metrics_dir()

from core import task_metrics  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_project.settings")

app = Celery("orders_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

REQUEST_ID_HEADER = "request_id"


@before_task_publish.connect
def _send_request_id(headers=None, **kwargs):
    request_id = get_request_id()
    if headers is not None and request_id != "-":
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@task_prerun.connect
def _bind_request_id(task_id=None, task=None, **kwargs):
    # The header is checked like a client's X-Request-ID before it reaches a log line.
    sent = getattr(task.request, REQUEST_ID_HEADER, None)
    request_id = clean_request_id(sent) if sent else task_id
    task.request.request_id_token = set_request_id(request_id)
    # Sentry's Celery integration gives each run a scope of its own: the tag stays with it.
    tag_request_id(request_id)


@task_postrun.connect
def _unbind_request_id(task=None, **kwargs):
    token = getattr(task.request, "request_id_token", None)
    if token is not None:
        reset_request_id(token)


# --- Task metrics (docs/operations.md) ------------------------------------------------


@task_prerun.connect
def _time_task(task=None, **kwargs):
    task_metrics.task_started(task)


@task_postrun.connect
def _count_task(task=None, state=None, **kwargs):
    task_metrics.task_finished(task, state)


@worker_init.connect
def _clear_worker_metrics(**kwargs):
    task_metrics.worker_starting()


@worker_ready.connect
def _serve_worker_metrics(**kwargs):
    from django.conf import settings

    if settings.CELERY_METRICS_PORT:
        task_metrics.serve(settings.CELERY_METRICS_PORT, settings.CELERY_METRICS_ADDRESS)


@worker_process_shutdown.connect
def _forget_pool_process(pid=None, **kwargs):
    task_metrics.process_exited(pid or os.getpid())
