from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        from core.events import on_events_committed, register_consumer
        from core.metrics import register_collector
        from core.schedules import connect_schedules

        from . import kick, metrics, services
        from .schedules import schedules

        connect_schedules(self, schedules)
        register_consumer(services.deliveries_from_events)
        # After a transaction that wrote events commits, a worker is told.
        on_events_committed(kick.kick)
        # Read at each scrape of /metrics (docs/operations.md).
        register_collector("webhook_deliveries", metrics.deliveries_backlog)
