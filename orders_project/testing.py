"""Helpers shared by the test suites of every app."""

import os
import subprocess
import sys
from pathlib import Path

from rest_framework.test import APIClient


def bearer_client(user) -> APIClient:
    """A client that authenticates with a real access JWT, as API clients do."""
    from accounts.services import user_tokens

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {user_tokens(user=user)['access']}")
    return client


def assert_error(
    response, status: int, code: str, attr: str | None = None, *, error_type: str | None = None
):
    """The response is the SPEC's error shape with this status, code and attr."""
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    expected_type = error_type or (
        "server_error"
        if status >= 500
        else ("validation_error" if status == 400 else "client_error")
    )
    assert body["type"] == expected_type, body
    assert any(e["code"] == code and e["attr"] == attr for e in body["errors"]), body
    for error in body["errors"]:
        assert set(error) == {"code", "detail", "attr"}, error
        assert error["detail"]
    return body


BASE_DIR = Path(__file__).resolve().parent.parent


def run_python(args: list[str], settings_module: str = "orders_project.settings", **env):
    """Run Python in a fresh process from the project folder, with DEBUG and
    SECRET_KEY taken only from `env`: for what is decided at start-up."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    clean.update({"DJANGO_SETTINGS_MODULE": settings_module, **env})
    return subprocess.run(  # noqa: S603 (our own interpreter, arguments from tests)
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
