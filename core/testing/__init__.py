"""Helpers shared by the test suites of every app."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.db import connections
from rest_framework.test import APIClient


def client_for(user) -> APIClient:
    """A client authenticated as `user` (None: anonymous), without a token."""
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def run_together(count: int, work):
    """Run `work(i)` in `count` threads released at the same moment, each with
    its own database connection; return each result or the exception it raised."""
    barrier = threading.Barrier(count)

    def task(i):
        try:
            barrier.wait(timeout=10)
            return work(i)
        except Exception as exc:  # returned: the caller inspects it
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(task, range(count)))


def assert_no_read_older_than_a_change(*, read, write, changes: int, readers: int = 3, start=0):
    """Readers call `read()` (a number that grows with each change) in a loop
    while a writer calls `write(n)` for n = 1..`changes`, then reads its own
    change. Asserts the writer saw each change at once, and that every read
    that started after change n had returned showed n or later."""
    done: list[tuple[float, int]] = []  # (when change n had returned, n)
    stop = threading.Event()

    def reader(_):
        seen = []
        while not stop.is_set():
            started = time.monotonic()
            seen.append((started, read()))
        return seen

    def writer():
        try:
            for n in range(1, changes + 1):
                write(n)
                done.append((time.monotonic(), start + n))
                assert read() == start + n
        finally:
            stop.set()
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = run_together(readers, reader)
    thread.join()
    assert len(done) == changes, "the writer failed"
    for seen in reads:
        assert not isinstance(seen, Exception), seen
        assert len(seen) > 5
        for started, value in seen:
            latest = max((n for finished, n in done if finished < started), default=start)
            assert value >= latest, (started, value, latest)


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


BASE_DIR = Path(__file__).resolve().parents[2]


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


def settings_of(env: dict, *names: str) -> dict[str, str]:
    """repr() of each settings expression (`"DATABASES['default']['HOST']"`),
    read in one fresh process started with `env` (run_python)."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{n: repr(eval('s.' + n)) for n in {list(names)!r}}}))"
    )
    result = run_python(["-c", code], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def messages_of(response) -> list[str]:
    """The messages the admin queued for the user during `response`'s request."""
    from django.contrib.messages import get_messages

    return [str(message) for message in get_messages(response.wsgi_request)]


class TcpProxy:
    """A TCP forwarder to `upstream` on a port of 127.0.0.1, for taking a
    service away and bringing it back: `down()` drops every connection and
    refuses new ones, `up()` serves again on the same port."""

    def __init__(self, upstream: tuple[str, int], port: int = 0):
        self.upstream = upstream
        self.port = port
        self._listener = None
        self._sockets: set = set()
        self._lock = threading.Lock()

    def up(self) -> int:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port, self._listener = listener.getsockname()[1], listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self.port

    def down(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # down()
            upstream = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class Blackhole:
    """A TCP server that accepts connections and never answers: a broker that
    hangs. It counts the connections made to it."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        self.server.close()
        for connection in self.connections:
            connection.close()
