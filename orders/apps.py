from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self):
        from core.metrics import register_collector
        from core.schedules import connect_schedules

        from . import metrics
        from .schedules import schedules

        connect_schedules(self, schedules)
        # Read at each scrape of /metrics (docs/operations.md).
        register_collector("order_emails", metrics.emails_backlog)
        register_collector("order_processing", metrics.processing_backlog)
