"""The database unreachable (issue 8): every endpoint answers a 503 JSON
error quickly, `/readyz` says which check failed, nothing hangs.

Each case runs the app in a fresh process whose DATABASE_URL points at a
port where nothing answers PostgreSQL: one that refuses connections, and
one that accepts them and never says a word (the connect timeout's case)."""

import json

import pytest

from core.testing import Blackhole, run_python

pytestmark = pytest.mark.slow

PROBE = """
import json, time, django
django.setup()
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken
token = AccessToken()  # signed, so authentication goes on to look the user up
token["user_id"] = 1
client = Client()
results = {}
for path, auth in [
    ("/api/v1/products/", {}),
    ("/api/v1/orders/", {"HTTP_AUTHORIZATION": f"Bearer {token}"}),
    ("/readyz", {}),
    ("/healthz", {}),
]:
    started = time.perf_counter()
    response = client.get(path, **auth)
    results[path] = {
        "status": response.status_code,
        "type": response["Content-Type"],
        "body": response.json(),
        "seconds": time.perf_counter() - started,
    }
print(json.dumps(results))
"""


@pytest.fixture
def silent_port():
    """A TCP port that accepts connections and never answers."""
    blackhole = Blackhole()
    yield blackhole.port
    blackhole.close()


def probe(port: int) -> dict:
    done = run_python(
        ["-c", PROBE],
        DEBUG="1",
        ALLOWED_HOSTS="testserver",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/orders",
        REDIS_URL="",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_database_down(results: dict, within: float):
    for path in ("/api/v1/products/", "/api/v1/orders/"):
        result = results[path]
        assert result["status"] == 503, (path, result)
        assert result["type"].startswith("application/json")
        assert result["body"]["errors"][0]["code"] == "service_unavailable"
        assert result["seconds"] < within, (path, result["seconds"])
    ready = results["/readyz"]
    assert ready["status"] == 503
    assert "database" in [error["attr"] for error in ready["body"]["errors"]]
    assert results["/healthz"]["status"] == 200  # the process itself is fine


def test_a_refused_database_connection_is_a_quick_503_everywhere():
    assert_database_down(probe(port=9), within=1.0)  # nothing listens on 9


def test_a_database_that_never_answers_is_a_503_after_the_connect_timeout(silent_port):
    # libpq's smallest connect timeout is 2 s (DATABASE_CONNECT_TIMEOUT).
    assert_database_down(probe(port=silent_port), within=3.0)


RECOVERY = """
import json, os, socket, sys
# The settings read DATABASE_URL when first imported (importing the testing
# helpers does that), so the proxy's port is chosen before anything else.
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
os.environ["DATABASE_URL"] = f"postgres://{user}@127.0.0.1:{{port}}/{name}"
from core.testing import TcpProxy
proxy = TcpProxy(("{host}", {port}), port=port)
proxy.up()
import django
django.setup()
from django.core.handlers.wsgi import WSGIHandler
from wsgiref.util import setup_testing_defaults

app = WSGIHandler()  # what gunicorn calls: request_started/finished included

def get(path):
    environ = {{"PATH_INFO": path, "REQUEST_METHOD": "GET", "HTTP_HOST": "testserver"}}
    setup_testing_defaults(environ)
    seen = []
    app(environ, lambda status, headers: seen.append(int(status.split()[0])))
    return seen[0]

statuses = [get("/api/v1/products/")]
proxy.down()
statuses += [get("/api/v1/products/"), get("/readyz")]
proxy.up()
statuses += [get("/api/v1/products/"), get("/readyz")]
print(json.dumps(statuses))
"""


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_app_recovers_when_the_database_comes_back_without_a_restart():
    from django.db import connection

    db = connection.settings_dict
    done = run_python(
        [
            "-c",
            RECOVERY.format(host=db["HOST"], port=db["PORT"], user=db["USER"], name=db["NAME"]),
        ],
        DEBUG="1",
        ALLOWED_HOSTS="testserver",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    up, down, down_ready, back, back_ready = json.loads(done.stdout.strip().splitlines()[-1])
    assert (up, down, down_ready) == (200, 503, 503)
    assert (back, back_ready) == (200, 200)
