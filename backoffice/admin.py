"""The back office's own admin site: the dashboard on its index page."""

from django.contrib import admin

from . import dashboard


class OrdersAdminSite(admin.AdminSite):
    site_header = "Orders back office"
    site_title = "Orders admin"
    index_title = "Today"

    def index(self, request, extra_context=None):
        return super().index(
            request, {**dashboard.dashboard_context(request), **(extra_context or {})}
        )
