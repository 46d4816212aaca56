"""A real HTTP receiver for webhook tests: a threaded server on 127.0.0.1
that records every request and answers as a script says."""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"


class Receiver:
    """`Receiver()` listens at once; `url` is where to send. `answer` decides
    each response from the request (default 200 "ok"); `script(...)` answers
    the next requests in turn, then 200s."""

    def __init__(self):
        self.received: list[Received] = []
        self.arrived = threading.Condition()
        self.answer: Callable[[Received], Answer] = lambda request: Answer()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                request = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                with receiver.arrived:
                    receiver.received.append(request)
                    receiver.arrived.notify_all()
                answer = receiver.answer(request)
                if answer.delay:
                    time.sleep(answer.delay)
                body = answer.body.encode()
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (a timeout): nothing to answer
                    pass

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def script(self, *answers: Answer) -> None:
        queue = list(answers)
        lock = threading.Lock()

        def next_answer(request):
            with lock:
                return queue.pop(0) if queue else Answer()

        self.answer = next_answer

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        """Block until `count` requests have arrived."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} of {count} requests arrived")
                self.arrived.wait(left)
        return list(self.received)

    def ids(self) -> list[str]:
        return [request.webhook_id for request in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
