from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self):
        from core.schedules import connect_schedules

        from .schedules import schedules

        connect_schedules(self, schedules)
