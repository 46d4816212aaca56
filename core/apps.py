from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The shared kernel: error shape, pagination, throttling, filters,
    request ids, body limits, health. It imports no other app of the project."""

    name = "core"
    verbose_name = "Core"
