"""The project's URLs plus views that fail on purpose, for the error tests."""

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


urlpatterns = [
    path("test/api-boom/", api_boom),
    path("test/django-boom/", django_boom),
    *project_urlpatterns,
]
