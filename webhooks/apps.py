from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        from core.events import on_events_committed
        from core.schedules import connect_schedules

        from . import kick
        from .schedules import schedules

        connect_schedules(self, schedules)
        # After a transaction that wrote events commits, a worker is told.
        on_events_committed(kick.kick)
