from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from core.schedules import connect_schedules

        # Imported for what they register: the OpenAPI description of the
        # X-API-Key scheme, and the system check of the SMS settings.
        from . import auth_cache, authentication, checks  # noqa: F401
        from .schedules import schedules
        from .sms import on_sms_queued
        from .tasks import dispatch_sms

        connect_schedules(self, schedules)
        # Once a transaction that queued texts commits, a worker is told.
        on_sms_queued(dispatch_sms)
        # The cached authentication state of API reads follows every change.
        auth_cache.connect()
