from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self):
        from core.events import register_consumer
        from core.metrics import register_collector
        from core.schedules import connect_schedules

        from . import cache, metrics
        from .schedules import schedules

        connect_schedules(self, schedules)
        # Read at each scrape of /metrics (docs/operations.md).
        register_collector("order_emails", metrics.emails_backlog)
        register_collector("order_processing", metrics.processing_backlog)
        # The order detail cache: invalidated by the services, and by published
        # events as a safety net (orders/cache.py).
        cache.connect()
        register_consumer(cache.invalidate_from_events)
