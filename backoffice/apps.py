"""The back office: the admin site with its dashboard.

Two app configs live here. `AdminSiteConfig` replaces `django.contrib.admin`
in INSTALLED_APPS so that `admin.site` is the back office's own site (its
index is the dashboard); it must not import models, as INSTALLED_APPS loads it
before they exist. `BackofficeConfig` is this package as an app of its own, so
that Django finds its template tags and tests like any app's.
"""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AdminSiteConfig(admin_apps.AdminConfig):
    default = False
    default_site = "backoffice.admin.OrdersAdminSite"


class BackofficeConfig(AppConfig):
    default = True
    name = "backoffice"
    verbose_name = "Back office"
