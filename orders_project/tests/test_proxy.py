"""The reverse proxy of the compose stack against slow clients (issue 15).

gunicorn's sync workers, facing the network, are held by clients that send
their headers a byte at a time (slowloris). The test runs gunicorn with one
worker and nginx with deploy/nginx/nginx.conf in front of it, opens slow
connections, and checks that /healthz still answers at once through nginx —
and, so that the test can fail, that the same slow connection straight to
gunicorn does hold its worker."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.testing import BASE_DIR

pytestmark = [pytest.mark.slow, pytest.mark.nginx]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def healthz_seconds(port: int, timeout: float = 4) -> float | None:
    """How long GET /healthz takes on `port`, or None if it did not answer."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = sock.recv(64)
    except OSError:
        return None
    return time.monotonic() - started if answer.startswith(b"HTTP/1.1 200") else None


def slow_clients(port: int, count: int) -> list[socket.socket]:
    """Connections that have sent the start of a request and then stall."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
        sockets.append(sock)
    return sockets


@pytest.fixture
def stack(tmp_path):
    app_port, proxy_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DEBUG"},
        "DJANGO_SETTINGS_MODULE": "orders_project.settings",
        "DEBUG": "0",
        "SECRET_KEY": "proxy-test-secret-key-long-enough-0123456789-abcdefghijklmnopq",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "GUNICORN_BIND": f"127.0.0.1:{app_port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_TIMEOUT": "60",
    }
    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            *("orders_project.wsgi:application", "--config", "gunicorn.conf.py"),
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    conf = (BASE_DIR / "deploy" / "nginx" / "nginx.conf").read_text()
    conf = conf.replace("server web:8000;", f"server 127.0.0.1:{app_port};")
    conf = conf.replace("listen 8000;", f"listen 127.0.0.1:{proxy_port};")
    conf = conf.replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    conf = conf.replace("http {", f"http {{\n    client_body_temp_path {tmp_path};", 1)
    (tmp_path / "nginx.conf").write_text(conf)
    nginx = subprocess.Popen(
        [NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(app_port)
        wait_for(proxy_port)
        yield app_port, proxy_port
    finally:
        for process in (nginx, gunicorn):
            process.terminate()
            process.wait(timeout=10)


def test_slow_clients_do_not_hold_the_app_behind_the_proxy(stack):
    _, proxy_port = stack
    assert healthz_seconds(proxy_port) is not None

    stalled = slow_clients(proxy_port, 4)
    try:
        took = healthz_seconds(proxy_port)
    finally:
        for sock in stalled:
            sock.close()

    assert took is not None and took < 1.0, took


def test_without_the_proxy_one_slow_client_holds_the_only_worker(stack):
    app_port, _ = stack
    stalled = slow_clients(app_port, 1)
    try:
        assert healthz_seconds(app_port, timeout=2) is None
    finally:
        for sock in stalled:
            sock.close()
