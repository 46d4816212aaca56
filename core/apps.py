from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The shared kernel: error shape, pagination, throttling, filters,
    request ids, body limits, health. It imports no other app of the project."""

    name = "core"
    verbose_name = "Core"

    def ready(self):
        from . import backlog, replicas, task_metrics
        from .metrics import register_collector

        # Read at each scrape of /metrics (docs/operations.md).
        register_collector("events", backlog.events_backlog)
        register_collector("celery_queues", backlog.celery_queues)
        register_collector("celery_task_runs", task_metrics.task_runs)
        register_collector("db_replicas", replicas.replica_readings)
