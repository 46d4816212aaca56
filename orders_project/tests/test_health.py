import json
import socket

import pytest
from django.test import override_settings

from core.testing import assert_error, run_python


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_ok_without_touching_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_other_methods_with_a_json_405(path):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(path)
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.django_db
def test_readyz_is_ok_when_database_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_names_the_broker_when_it_is_unreachable(client):
    with override_settings(CELERY_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0"):
        response = client.get("/readyz")
    body = assert_error(response, 503, "service_unavailable", "broker")
    assert body["checks"] == {"database": "ok", "broker": "unavailable"}


def test_readyz_names_the_database_when_it_is_unreachable():
    # A fresh process pointed at a closed port: the real connection attempt fails.
    port = closed_port()
    script = (
        "import django, json; django.setup();"
        "from django.test.utils import setup_test_environment; setup_test_environment();"
        "from django.test import Client; r = Client().get('/readyz');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    result = run_python(
        ["-c", script],
        settings_module="orders_project.test_settings",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/orders",
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 503
    assert outcome["body"]["checks"]["database"] == "unavailable"
    assert outcome["body"]["errors"][0] == {
        "code": "service_unavailable",
        "detail": "The database check failed.",
        "attr": "database",
    }
