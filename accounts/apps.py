from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from core.schedules import connect_schedules

        # Registers the OpenAPI description of the X-API-Key scheme.
        from . import authentication  # noqa: F401
        from .schedules import schedules

        connect_schedules(self, schedules)
