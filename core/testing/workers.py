"""Real Celery workers in a test's own process, on a shared Redis broker.

`isolated_queues` routes every task as in production (CELERY_TASK_ROUTES,
CELERY_TASK_DEFAULT_QUEUE), to queues whose names carry a prefix unique to
the test, so that the test's workers consume nothing else and nothing is
left behind; `embedded_worker` starts a worker (a thread of this process) on
some of them. What a task enqueues in such a worker goes to the test's queues
too: they share the test's app and settings."""

import contextlib
import logging
import uuid

from celery.contrib.testing.worker import start_worker


@contextlib.contextmanager
def isolated_queues(app, prefix: str = "test"):
    """Route `app`'s tasks to `<prefix>-<random>-<queue>` while the block runs.
    Yields {production queue: the test's queue}; the test's queues are
    deleted from the broker at the end."""
    conf = app.conf
    saved = {"task_routes": conf.task_routes, "task_default_queue": conf.task_default_queue}
    unique = f"{prefix}-{uuid.uuid4().hex[:12]}"
    declared = {getattr(queue, "name", queue) for queue in conf.task_queues or ()}
    production = {*declared, conf.task_default_queue}
    production |= {route["queue"] for route in (conf.task_routes or {}).values()}
    names = {queue: f"{unique}-{queue}" for queue in sorted(production)}
    # update(), not assignment: it is what makes Celery rebuild its router.
    conf.update(
        task_routes={
            task: {**route, "queue": names[route["queue"]]}
            for task, route in (conf.task_routes or {}).items()
        },
        task_default_queue=names[conf.task_default_queue],
    )
    try:
        yield names
    finally:
        conf.update(saved)
        with app.connection_for_write() as connection:
            for queue in names.values():
                connection.default_channel.queue_delete(queue)


def embedded_worker(app, queues: list[str], *, concurrency: int = 1, **kwargs):
    """`celery.contrib.testing`'s worker, with the thread pool, serving
    `queues`. The log level stays what it is: Celery's test worker sets the
    root logger to its own level (ERROR) each time one starts, and only the
    first worker of a process has Django configure logging again after it,
    so a later test would lose its INFO lines."""
    return start_worker(
        app,
        pool="threads",
        concurrency=concurrency,
        perform_ping_check=False,
        queues=queues,
        loglevel=logging.getLogger().getEffectiveLevel(),
        **kwargs,
    )
