from django.contrib.admin.apps import AdminConfig


class OrdersAdminConfig(AdminConfig):
    """`django.contrib.admin` with the back office's own site (its dashboard)
    as `admin.site`. Kept apart from `orders_project.admin`, which imports
    models: INSTALLED_APPS imports this module before models can load."""

    default_site = "orders_project.admin.OrdersAdminSite"
