"""The project's URLs plus views that fail on purpose, for the error tests."""

from django.db import OperationalError
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from orders_project.urls import urlpatterns as project_urlpatterns


class Boom(Exception):
    pass


@api_view(["GET"])
@permission_classes([AllowAny])
def api_boom(request):
    raise Boom("secret detail that must not reach the client")


def django_boom(request):
    raise Boom("secret detail that must not reach the client")


@api_view(["GET"])
@permission_classes([AllowAny])
def api_db_down(request):
    raise OperationalError("connection to server failed: secret detail")


def django_db_down(request):
    raise OperationalError("connection to server failed: secret detail")


urlpatterns = [
    path("test/api-boom/", api_boom),
    path("test/django-boom/", django_boom),
    path("test/api-db-down/", api_db_down),
    path("test/django-db-down/", django_db_down),
    *project_urlpatterns,
]
