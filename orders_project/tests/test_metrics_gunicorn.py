"""/metrics under a real gunicorn with two sync workers (SPEC §11): the
numbers of every worker together, in prometheus-client's multi-process mode,
as gunicorn.conf.py sets it up; a worker killed does not take its counts
with it; and with LOG_FORMAT=json every line the server writes is one JSON
object, the access lines carrying the request id, user, route and status.

gunicorn serves the test's own PostgreSQL database (committed data:
`transaction=True`), with production settings (DEBUG off)."""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from accounts.services import user_tokens
from accounts.tests.factories import UserFactory
from core.testing import BASE_DIR
from inventory.tests.factories import ProductFactory
from orders.models import Order

from .metrics_helpers import TOKEN, database_url, parse, value
from .test_proxy import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HEALTHZ = {"route": "^healthz/?$", "method": "GET", "status": "200"}
STALE_PID = 4_000_000  # no live process has it


def plant_stale_counts(metrics_dir: Path) -> None:
    """What a previous run of the server would have left: 1000 requests to
    /healthz. gunicorn's on_starting must clear it."""
    stale = MmapedDict(str(metrics_dir / f"counter_{STALE_PID}.db"))
    key = mmap_key(
        "http_requests_total",
        "http_requests_total",
        list(HEALTHZ),
        list(HEALTHZ.values()),
        "HTTP requests answered, by URL pattern, method and status.",
    )
    stale.write_value(key, 1000.0, 0.0)
    stale.close()


@pytest.fixture
def server(tmp_path):
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    plant_stale_counts(metrics_dir)
    log_path = tmp_path / "gunicorn.log"
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}},
        "DJANGO_SETTINGS_MODULE": "orders_project.settings",
        "DEBUG": "0",
        # The test's own, so that the JWTs it makes are valid there.
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": database_url(),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_TIMEOUT": "60",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_TOKEN": TOKEN,
        "LOG_FORMAT": "json",
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                *("orders_project.wsgi:application", "--config", "gunicorn.conf.py"),
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(port, timeout=30)
        yield f"http://127.0.0.1:{port}", metrics_dir, log_path, process
    finally:
        process.terminate()
        process.wait(timeout=20)


def healthz_per_worker(metrics_dir: Path) -> dict[int, float]:
    """GET /healthz answered by each worker, read from its own counter file."""
    served = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for family in MultiProcessCollector.merge([str(path)], accumulate=False):
            for sample in family.samples:
                if sample.name == "http_requests_total" and sample.labels == HEALTHZ:
                    served[pid] = sample.value
    return served


def get(url: str, **headers) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=10)


def scrape(base: str) -> dict:
    response = get(f"{base}/metrics", Authorization=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.text
    return parse(response.text)


def test_metrics_add_up_every_workers_counts_and_keep_a_killed_workers(server):
    base, metrics_dir, _, process = server
    assert healthz_per_worker(metrics_dir) == {}, "the stale file was not cleared"

    # Concurrent requests, until each worker has answered some.
    sent = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(20):
            answers = list(pool.map(lambda i: get(f"{base}/healthz").status_code, range(24)))
            assert answers == [200] * 24
            sent += 24
            if len([n for n in healthz_per_worker(metrics_dir).values() if n > 0]) == 2:
                break
    per_worker = healthz_per_worker(metrics_dir)
    assert len(per_worker) == 2 and all(count > 0 for count in per_worker.values()), per_worker
    assert sum(per_worker.values()) == sent

    assert value(scrape(base), "http_requests_total", **HEALTHZ) == sent

    # A worker killed (gunicorn starts another): its counts stay in the total.
    victim = max(per_worker, key=per_worker.get)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        process.poll() is None and len(list(metrics_dir.glob("counter_*.db"))) < 3
    ):
        time.sleep(0.1)
    assert len(list(metrics_dir.glob("counter_*.db"))) == 3, "no new worker started"
    answers = [get(f"{base}/healthz").status_code for _ in range(5)]
    assert answers == [200] * 5
    assert value(scrape(base), "http_requests_total", **HEALTHZ) == sent + 5


def test_orders_placed_on_either_worker_are_counted_together_and_logged_as_json(server):
    base, _, log_path, _ = server
    customer = UserFactory()
    product = ProductFactory(stock=100)
    bearer = f"Bearer {user_tokens(user=customer)['access']}"

    def place(index: int) -> int:
        response = httpx.post(
            f"{base}/api/v1/orders/",
            json={"items": [{"product_id": product.pk, "quantity": 1}]},
            headers={"Authorization": bearer, "X-Request-ID": f"place-{index}"},
            timeout=10,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(place, range(12))) == [201] * 12
    assert Order.objects.filter(customer=customer).count() == 12
    samples = scrape(base)
    assert value(samples, "orders_placed_total") == 12
    assert value(samples, "outbox_backlog", outbox="events") >= 12
    assert value(samples, "orders_pending") == 12
    assert get(f"{base}/metrics").status_code == 404  # no token: nothing to see

    time.sleep(0.5)  # the last access lines reach the file
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, gunicorn's own too
    access = {r["request_id"]: r for r in records if r.get("logger") == "core.access"}
    for index in range(12):
        line = access[f"place-{index}"]
        assert line["user_id"] == customer.pk
        assert line["route"] == "api/v1/orders/?$"
        assert (line["method"], line["status"]) == ("POST", 201)
        assert line["duration_ms"] > 0
    assert any(r.get("logger") == "gunicorn.error" for r in records), records[:3]
