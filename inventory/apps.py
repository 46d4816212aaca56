from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"

    def ready(self):
        from core.schedules import connect_schedules

        from .schedules import schedules

        connect_schedules(self, schedules)
