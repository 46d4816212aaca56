from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"
    verbose_name = "Backups"

    def ready(self):
        from core.events import register_consumer
        from core.schedules import connect_schedules

        from . import copies
        from .schedules import schedules

        connect_schedules(self, schedules)
        # Every order event published marks the order's copy due.
        register_consumer(copies.copies_due_from_events)
