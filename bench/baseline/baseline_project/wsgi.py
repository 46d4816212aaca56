"""WSGI config for baseline_project (as `startproject` writes it)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "baseline_project.settings")

application = get_wsgi_application()
