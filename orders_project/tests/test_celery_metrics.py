"""Celery task metrics (SPEC §11), counted from Celery's signals: runs by
final state in a table every worker adds to, shown by the web's /metrics;
durations and the last success served by the worker itself on
CELERY_METRICS_PORT, behind the same guard as the web's /metrics.

The real-worker test runs `celery worker` with the prefork pool (two child
processes) on the test's broker and database: the tasks run in the children,
the worker's endpoint in the parent adds up their files, and the web's
/metrics, in this process, shows the runs they counted."""

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from core.metrics_dir import worker_metrics_dir
from core.models import TaskRuns
from core.task_metrics import record_task_run
from core.testing import BASE_DIR
from orders_project.celery import app

from .metrics_helpers import TOKEN, database_url, parse, scrape, value
from .test_proxy import free_port

ACCUMULATE = "celery.accumulate"  # Celery's own task: returns its arguments, needs nothing


@pytest.fixture
def metrics_settings(settings):
    settings.METRICS_TOKEN = TOKEN
    return settings


@pytest.mark.django_db
def test_a_task_run_is_counted_by_its_outcome_and_timed(client, metrics_settings):
    task = app.tasks[ACCUMULATE]
    before = scrape(client)

    assert task.apply(args=(1, 2)).get() == (1, 2)
    failed = task.apply(kwargs={"index": 5})  # IndexError inside the task
    assert failed.failed()

    after = scrape(client)

    def delta(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert delta("celery_task_runs_total", task=ACCUMULATE, state="success") == 1
    assert delta("celery_task_runs_total", task=ACCUMULATE, state="failure") == 1
    assert delta("celery_task_duration_seconds_count", task=ACCUMULATE) == 2
    last = value(after, "celery_task_last_success_timestamp_seconds", task=ACCUMULATE)
    assert last == pytest.approx(time.time(), abs=30)


@pytest.mark.django_db
def test_runs_are_one_row_per_task_and_state_counted_up():
    for _ in range(3):
        record_task_run("orders.tasks.example", "success")
    record_task_run("orders.tasks.example", "failure")
    counts = dict(
        TaskRuns.objects.filter(task="orders.tasks.example").values_list("state", "count")
    )
    assert counts == {"success": 3, "failure": 1}


@pytest.mark.django_db(transaction=True)
def test_a_database_that_refuses_the_count_does_not_fail_the_task(monkeypatch, caplog):
    monkeypatch.setattr(TaskRuns._meta, "db_table", "no_such_table")
    record_task_run("orders.tasks.example", "success")  # logged, not raised
    assert "Could not count a run of orders.tasks.example" in caplog.text
    monkeypatch.undo()
    assert not TaskRuns.objects.exists()


# --- A real worker ------------------------------------------------------------------------------


def stale_run_file(directory: Path) -> None:
    """What a previous run of the worker left: 500 timed runs. The worker's
    start must forget them."""
    stale = MmapedDict(str(directory / "histogram_4000001.db"))
    labels = {"task": ACCUMULATE}
    key = mmap_key(
        "celery_task_duration_seconds",
        "celery_task_duration_seconds_count",
        list(labels),
        list(labels.values()),
        "Time a Celery task run took, by task.",
    )
    stale.write_value(key, 500.0, 0.0)
    stale.close()


def endpoint_samples(url: str) -> dict | None:
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2)
    except httpx.TransportError:
        return None
    return parse(response.text) if response.status_code == 200 else None


def wait_until(condition, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    return None


@pytest.fixture
def worker(tmp_path):
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs the Redis broker: set REDIS_URL")
    if connection.vendor != "postgresql":
        pytest.skip("needs a database another process can share: set DATABASE_URL")
    port = free_port()
    queue = f"test-metrics-{uuid.uuid4().hex}"
    directory = Path(worker_metrics_dir(str(port)))
    directory.mkdir(parents=True, exist_ok=True)
    stale_run_file(directory)
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DEBUG", "PROMETHEUS_MULTIPROC_DIR"}},
        "DJANGO_SETTINGS_MODULE": "orders_project.settings",
        "DATABASE_URL": database_url(),
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_METRICS_PORT": str(port),
        "CELERY_METRICS_ADDRESS": "127.0.0.1",
        "METRICS_TOKEN": TOKEN,
    }
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("celery")),
            *("-A", "orders_project", "worker", "-Q", queue, "--pool=prefork"),
            *("--concurrency=2", "--without-mingle", "--without-gossip", "--loglevel=INFO"),
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        assert wait_until(lambda: endpoint_samples(url) is not None, 60), (
            tmp_path / "worker.log"
        ).read_text()
        yield url, queue, directory, process
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)
        with app.connection_for_write() as broker:
            broker.default_channel.queue_delete(queue)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_counts_the_runs_of_its_pool_processes_for_the_web_and_itself(
    worker, client, metrics_settings
):
    url, queue, directory, process = worker
    for args in ((1,), (2,), (3,)):
        app.send_task(ACCUMULATE, args=args, queue=queue)
    app.send_task(ACCUMULATE, kwargs={"index": 9}, queue=queue)

    def four_runs():
        samples = endpoint_samples(url)
        runs = value(samples or {}, "celery_task_duration_seconds_count", task=ACCUMULATE)
        return samples if (runs or 0) >= 4 else None

    samples = wait_until(four_runs, 60)
    assert samples, "the worker's endpoint never showed the four runs"
    assert value(samples, "celery_task_duration_seconds_count", task=ACCUMULATE) == 4
    # The outcomes, counted by the worker's children, shown by the web's /metrics.
    web = scrape(client)
    assert value(web, "celery_task_runs_total", task=ACCUMULATE, state="success") == 3
    assert value(web, "celery_task_runs_total", task=ACCUMULATE, state="failure") == 1
    # Counted in the pool's processes, not in the one serving the endpoint.
    writers = {int(path.stem.split("_")[1]) for path in directory.glob("counter_*.db")}
    assert writers - {process.pid}, writers

    refused = httpx.get(url, timeout=5)
    assert refused.status_code == 404
    assert refused.json()["errors"][0]["code"] == "not_found"
    elsewhere = url.replace("/metrics", "/other")
    assert httpx.get(elsewhere, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
