import pytest

from core.request_id import clean_request_id


def test_a_request_id_is_generated_when_none_is_sent(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32 and first != second


def test_the_clients_request_id_is_echoed(client):
    assert (
        client.get("/healthz", HTTP_X_REQUEST_ID="shop-7:abc.1")["X-Request-ID"] == "shop-7:abc.1"
    )


@pytest.mark.django_db
def test_error_responses_carry_the_request_id_too(client):
    response = client.get("/api/v1/nothing/", HTTP_X_REQUEST_ID="req-404")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "req-404"


@pytest.mark.parametrize("unsafe", ["a b", "x" * 129, "line\\nbreak", "<script>", ""])
def test_an_unsafe_request_id_is_replaced(unsafe):
    cleaned = clean_request_id(unsafe)
    assert cleaned != unsafe and len(cleaned) == 32


def test_each_request_writes_an_access_line_with_its_id(client, log_lines):
    client.get("/healthz", HTTP_X_REQUEST_ID="trace-me")
    access = [line for line in log_lines() if "core.access" in line]
    assert len(access) == 1, log_lines()
    assert "[trace-me]" in access[0] and "GET /healthz 200 " in access[0]


@pytest.mark.django_db
def test_djangos_own_response_warnings_carry_the_request_id(client, log_lines):
    client.get("/api/v1/auth/me/", HTTP_X_REQUEST_ID="who-am-i")
    warnings = [line for line in log_lines() if "django.request" in line]
    assert warnings and all("[who-am-i]" in line for line in warnings), log_lines()
