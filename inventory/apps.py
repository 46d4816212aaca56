from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"

    def ready(self):
        from core.schedules import connect_schedules

        from . import cache
        from .schedules import schedules

        connect_schedules(self, schedules)
        # Product detail JSON in Redis: any ORM save or delete of a product
        # invalidates it (the services' bulk updates do it themselves).
        cache.connect()
