"""LOG_FORMAT=json (SPEC §11): one JSON object a line, each with the request
id; the access line with the user, route, method, status and duration. The
text format stays the default. (Under gunicorn, every line of the server's
output: test_metrics_gunicorn.py.)"""

import io
import json
import logging

import pytest

from core.logformat import JsonFormatter
from core.request_id import RequestIdLogFilter
from core.testing import client_for, run_python

SCRIPT = """
import logging
import django
django.setup()
from django.conf import settings
logging.getLogger("orders.example").info("a line")
try:
    raise ValueError("multi\\nline")
except ValueError:
    logging.getLogger("orders.example").exception("it failed")
print(settings.LOG_FORMAT)
"""


@pytest.fixture
def json_lines():
    """Log records as the console handler writes them with LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(), logging.getLogger("django")]
    for logger in loggers:
        logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


def access_lines(records):
    return [record for record in records if record["logger"] == "core.access"]


@pytest.mark.django_db
def test_the_access_line_is_one_json_object_with_the_request_fields(json_lines, user):
    client_for(user).get("/api/v1/orders/424242/", HTTP_X_REQUEST_ID="find-me-1")

    (line,) = access_lines(json_lines())
    assert line["request_id"] == "find-me-1"
    assert line["user_id"] == user.pk
    assert line["route"] == "api/v1/orders/(?P<pk>[0-9]{1,18})/?$"
    assert (line["method"], line["path"], line["status"]) == (
        "GET",
        "/api/v1/orders/424242/",
        404,
    )
    assert isinstance(line["duration_ms"], float)
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")


@pytest.mark.django_db
def test_an_anonymous_request_logs_no_user_and_an_unknown_path_no_route(json_lines, client):
    client.get("/no/such/thing/", HTTP_X_REQUEST_ID="anon-1")

    records = json_lines()
    (line,) = access_lines(records)
    assert (line["user_id"], line["route"], line["status"]) == (None, "unmatched", 404)
    # Django's own warning about the 404 carries the id too, and stays serialisable.
    assert any(r["logger"] == "django.request" and r["request_id"] == "anon-1" for r in records), (
        records
    )


@pytest.mark.slow  # a fresh process: the format is chosen at start-up
def test_log_format_json_makes_every_line_json_a_traceback_included():
    result = run_python(["-c", SCRIPT], DEBUG="1", LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "json"
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert [r["message"] for r in records] == ["a line", "it failed"]
    assert "ValueError: multi\nline" in records[1]["exc_info"]
    assert all(r["request_id"] == "-" for r in records)


@pytest.mark.slow  # a fresh process: the format is chosen at start-up
def test_the_text_format_is_the_default_and_other_formats_are_refused():
    text = run_python(["-c", SCRIPT], DEBUG="1")
    assert text.returncode == 0, text.stderr
    assert " INFO [-] orders.example: a line" in text.stderr
    refused = run_python(["-c", SCRIPT], DEBUG="1", LOG_FORMAT="xml")
    assert refused.returncode != 0
    assert "LOG_FORMAT must be text or json" in refused.stderr
