"""The admin's middleware does nothing for API requests (core/middleware.py)."""

import pytest
from django.conf import settings
from django.http import HttpResponse

from core import middleware

CHAIN = (
    middleware.SessionMiddleware,
    middleware.AuthenticationMiddleware,
    middleware.OTPMiddleware,
    middleware.MessageMiddleware,
)


def chain_seen(rf, path: str) -> dict:
    seen = {}

    def view(request):
        seen.update(
            session=hasattr(request, "session"),
            user=hasattr(request, "user"),
            messages=hasattr(request, "_messages"),
        )
        return HttpResponse()

    handler = view
    for cls in reversed(CHAIN):
        handler = cls(handler)
    handler(rf.get(path))
    return seen


def test_the_settings_use_the_api_skipping_classes():
    for cls in CHAIN:
        assert f"{cls.__module__}.{cls.__name__}" in settings.MIDDLEWARE


@pytest.mark.django_db
def test_an_api_request_gets_no_session_user_or_messages(rf):
    assert chain_seen(rf, "/api/v1/orders/") == {"session": False, "user": False, "messages": False}


@pytest.mark.django_db
def test_an_admin_request_gets_them_all(rf):
    assert chain_seen(rf, "/admin/") == {"session": True, "user": True, "messages": True}
