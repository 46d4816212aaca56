"""Sentry (SPEC §11): on only with SENTRY_DSN; then an exception in a view or
a task reaches Sentry tagged with its request id, and with no personal data
(no user, no cookies, no credentials, no request body).

The DSN points at a stub Sentry started by the test on 127.0.0.1 (the SDK's
real transport, nothing leaves the machine). The app runs in a fresh process:
Sentry is set up at start-up, from the settings."""

import gzip
import json
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk

from accounts.tests.factories import UserFactory
from core.testing import run_python

from .metrics_helpers import database_url

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

APP = textwrap.dedent(
    """
    import django
    django.setup()

    import sentry_sdk
    from django.core.wsgi import get_wsgi_application
    from django.test import Client, RequestFactory, override_settings

    from accounts.models import User
    from orders_project.celery import app

    print("sentry active:", sentry_sdk.get_client().is_active())
    application = get_wsgi_application()  # what gunicorn calls


    def call(method, path, body="", **headers):
        environ = RequestFactory().generic(
            method, path, body, content_type="application/x-www-form-urlencoded", **headers
        ).environ
        status = []
        b"".join(application(environ, lambda line, headers, exc_info=None: status.append(line)))
        print(path, status[0])


    with override_settings(ROOT_URLCONF="orders_project.tests.urls"):
        browser = Client()
        browser.force_login(User.objects.get(email="{email}"))
        csrf = "c" * 32
        cookie = f"sessionid={{browser.cookies['sessionid'].value}}; csrftoken={{csrf}}"
        # A plain Django view, with a body and credentials that must not reach Sentry.
        call(
            "POST",
            "/test/django-boom/?q=1",
            "shipping_address=1+Private+Lane",
            HTTP_COOKIE=cookie,
            HTTP_X_CSRFTOKEN=csrf,
            HTTP_X_REQUEST_ID="req-django",
            HTTP_X_API_KEY="secret-api-key",
            HTTP_AUTHORIZATION="Bearer secret-bearer",
        )
        # An API view (DRF's exception handler reports it).
        call("GET", "/test/api-boom/", HTTP_COOKIE=cookie, HTTP_X_REQUEST_ID="req-api")
    # A task that fails; its run's id is its request id.
    app.tasks["celery.accumulate"].apply(kwargs={{"index": 5}}, task_id="task-run-1")
    sentry_sdk.flush(timeout=10)
    """
)


class StubSentry:
    """Takes envelopes as Sentry's ingest would, and keeps their events."""

    def __init__(self):
        self.events: list[dict] = []
        self.raw: list[bytes] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                stub.raw.append(body)
                stub.events.extend(events_in(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://publickey@127.0.0.1:{self.server.server_port}/42"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def events_in(envelope: bytes) -> list[dict]:
    """The event items of a Sentry envelope (a header line, then item header
    and payload pairs, the payload `length` bytes long when that is given)."""
    events, rest = [], envelope.split(b"\n", 1)[1] if b"\n" in envelope else b""
    while rest.strip():
        header_line, rest = rest.split(b"\n", 1)
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] :].lstrip(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        if header.get("type") == "event":
            events.append(json.loads(payload))
    return events


@pytest.fixture
def stub_sentry():
    stub = StubSentry()
    yield stub
    stub.close()


def run_app(email: str, **env):
    return run_python(
        ["-c", APP.format(email=email)],
        DEBUG="1",
        DATABASE_URL=database_url(),
        ALLOWED_HOSTS="testserver",
        **env,
    )


def test_errors_in_views_and_tasks_reach_sentry_with_their_request_id_and_no_personal_data(
    stub_sentry,
):
    user = UserFactory(email="private.person@example.com")
    result = run_app(user.email, SENTRY_DSN=stub_sentry.dsn, SENTRY_ENVIRONMENT="ci")
    assert result.returncode == 0, result.stderr
    assert "sentry active: True" in result.stdout
    assert "/test/django-boom/?q=1 500" in result.stdout, result.stdout
    assert "/test/api-boom/ 500" in result.stdout, result.stdout

    by_request = {}
    for event in stub_sentry.events:
        by_request.setdefault(event.get("tags", {}).get("request_id"), []).append(event)
    assert {"req-django", "req-api", "task-run-1"} <= set(by_request), stub_sentry.events
    for request_id in ("req-django", "req-api", "task-run-1"):
        event = by_request[request_id][0]
        assert event["environment"] == "ci"
        assert any(
            value["type"] in {"Boom", "IndexError"}
            for value in event.get("exception", {}).get("values", [])
        ), event

    everything = b"".join(stub_sentry.raw)
    for secret in (
        b"private.person@example.com",
        b"sessionid",
        b"secret-api-key",
        b"secret-bearer",
        b"1 Private Lane",
    ):
        assert secret not in everything, secret
    assert all("user" not in event for event in stub_sentry.events)


def test_without_a_dsn_sentry_is_off_and_sends_nothing(stub_sentry):
    assert not sentry_sdk.get_client().is_active()  # the test process: no SENTRY_DSN
    user = UserFactory()
    result = run_app(user.email, SENTRY_DSN="")
    assert result.returncode == 0, result.stderr
    assert "sentry active: False" in result.stdout
    assert stub_sentry.raw == []
