"""Every 4xx and 5xx is JSON in the SPEC's shape, whatever produced it."""

import io

import pytest

from core.testing import assert_error

pytestmark = pytest.mark.django_db

BOOM_URLS = "orders_project.tests.urls"


def test_unknown_url_is_a_json_404(client):
    assert_error(client.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert_error(client.get("/nothing-here"), 404, "not_found")


def test_unknown_url_is_a_json_404_in_debug_too(client, settings):
    settings.DEBUG = True
    response = client.get("/api/v1/no-such-thing/")
    assert_error(response, 404, "not_found")
    assert b"<html" not in response.content.lower()


def test_validation_errors_name_the_field(api_client):
    response = api_client.post("/api/v1/auth/register/", {"password": 12}, format="json")
    body = assert_error(response, 400, "required", "email")
    assert body["type"] == "validation_error"


def test_missing_credentials_are_a_401(api_client):
    response = api_client.get("/api/v1/auth/me/")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_method_not_allowed_is_a_405(api_client):
    assert_error(api_client.delete("/api/v1/auth/register/"), 405, "method_not_allowed")


def test_a_form_body_is_a_415(client):
    response = client.post("/api/v1/auth/register/", {"email": "a@example.com"})
    assert_error(response, 415, "unsupported_media_type")


def test_malformed_json_is_a_400_parse_error(client):
    response = client.post(
        "/api/v1/auth/register/", data="{not json", content_type="application/json"
    )
    assert_error(response, 400, "parse_error", error_type="client_error")


def test_a_body_over_the_limit_is_a_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = '{"email": "' + "a" * 200 + '@example.com"}'
    response = client.post("/api/v1/auth/register/", data=body, content_type="application/json")
    assert_error(response, 413, "request_too_large")


def post_chunked(client, path, body: bytes):
    """A POST as gunicorn hands over a chunked one: de-chunked, no Content-Length."""
    return client.generic(
        "POST",
        path,
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body)},
    )


def test_a_chunked_body_over_the_limit_is_a_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = b'{"email": "' + b"a" * 200 + b'@example.com"}'
    assert_error(post_chunked(client, "/api/v1/auth/register/", body), 413, "request_too_large")


def test_a_chunked_body_under_the_limit_is_read_whole(client, db):
    body = b'{"email": "chunked@example.com", "password": "Correct-Horse-7-Battery"}'
    response = post_chunked(client, "/api/v1/auth/register/", body)
    assert response.status_code == 201, response.content
    assert response.json()["email"] == "chunked@example.com"


def test_permission_denied_is_a_403_in_the_shape(client, user):
    # The admin answers non-staff users with a redirect; a CSRF failure is a 403.
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    response = csrf_client.post("/admin/login/", {"username": "x", "password": "y"})
    assert_error(response, 403, "csrf_failed")


@pytest.mark.urls(BOOM_URLS)
@pytest.mark.parametrize("path", ["/test/api-db-down/", "/test/django-db-down/"])
def test_a_database_error_is_the_same_503_in_api_and_other_views(client, path):
    response = client.get(path)
    assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"] == "5"
    assert b"secret" not in response.content


@pytest.mark.urls(BOOM_URLS)
@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/test/api-boom/", "/test/django-boom/"])
def test_an_unhandled_exception_is_a_json_500_without_a_traceback(
    client, settings, log_lines, path, debug
):
    settings.DEBUG = debug
    client.raise_request_exception = False
    response = client.get(path, HTTP_X_REQUEST_ID="boom-42")
    assert_error(response, 500, "error")
    assert b"secret detail" not in response.content
    assert b"Traceback" not in response.content
    assert response["X-Request-ID"] == "boom-42"
    # The log has the traceback, on a line that carries the request id.
    lines = log_lines()
    assert any("[boom-42]" in line and "ERROR" in line for line in lines), lines
    assert any("Traceback" in line for line in lines), lines
    assert any("secret detail" in line for line in lines), lines


def test_throttled_requests_get_429_with_retry_after(api_client, monkeypatch):
    from core.throttling import ClientScopedThrottle

    monkeypatch.setattr(ClientScopedThrottle, "THROTTLE_RATES", {"login": "2/min"})
    payload = {"email": "nobody@example.com", "password": "whatever-it-is"}
    for _ in range(2):
        assert api_client.post("/api/v1/auth/token/", payload).status_code == 401
    response = api_client.post("/api/v1/auth/token/", payload)
    assert_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60


# --- Hostile bodies and the headers of errors (issue 15) ---------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/auth/token/",
        "/api/v1/auth/register/",
        "/api/v1/auth/otp/start/",
        "/api/v1/auth/token/refresh/",
        "/api/v1/orders/",
    ],
)
def test_a_deeply_nested_body_is_a_400_parse_error_not_a_500(path, user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    client.raise_request_exception = False
    body = "[" * 6000 + "]" * 6000  # 12 KB; Python's decoder would recurse past its limit

    response = client.post(path, body, content_type="application/json")

    assert_error(response, 400, "parse_error", error_type="client_error")


def test_a_body_nested_deeper_than_the_api_needs_is_refused_too(user):
    from rest_framework.test import APIClient

    from core.parsers import MAX_DEPTH

    client = APIClient()
    client.force_authenticate(user)
    nested = {"items": [{"product_id": 1, "quantity": 1}]}
    for _ in range(MAX_DEPTH):
        nested = {"x": nested}

    response = client.post("/api/v1/orders/", nested, format="json")

    assert_error(response, 400, "parse_error", error_type="client_error")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/no-such-thing/", 404),
        ("get", "/api/v1/orders/", 401),
        ("post", "/healthz", 405),
    ],
)
def test_error_responses_keep_every_security_header(client, settings, method, path, status):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_SSL_REDIRECT = False

    response = getattr(client, method)(path, secure=True)

    assert response.status_code == status
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"]


def test_a_too_large_body_answer_keeps_the_security_headers_too(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    response = client.post(
        "/api/v1/auth/register/", "x" * 100, content_type="application/json", secure=True
    )
    assert response.status_code == 413
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
