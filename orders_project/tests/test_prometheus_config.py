"""deploy/prometheus: the scrape configuration and the alert rules are valid
for Prometheus (promtool, Debian's `prometheus` package), the rules' unit
tests pass, and every metric the rules name is one the app exports."""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from core.testing import BASE_DIR
from orders_project.celery import app

from .metrics_helpers import TOKEN, scrape

DEPLOY = BASE_DIR / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("REQUIRE_PROMTOOL"),
    reason="needs promtool: apt-get install prometheus",
)

REQUIRED_ALERTS = {
    "OrdersHighErrorRate",
    "OutboxBacklogOld",
    "OrderProcessingStalled",
    "CeleryQueueDeep",
    "WebhookDeliveriesGaveUp",
}


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL, "REQUIRE_PROMTOOL is set but promtool is missing (apt-get install prometheus)"
    return subprocess.run([PROMTOOL, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60)


@needs_promtool
@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "--syntax-only", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=["scrape config", "rules", "rule unit tests"],
)
def test_promtool_accepts_the_files_and_the_rules_unit_tests_pass(args):
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def rules() -> list[dict]:
    document = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_alerts_the_operators_need_are_there_with_a_severity():
    by_name = {rule["alert"]: rule for rule in rules()}
    assert set(by_name) >= REQUIRED_ALERTS
    for rule in by_name.values():
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule
        assert rule["annotations"]["summary"], rule


def test_both_kinds_of_target_are_scraped_with_the_token():
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"orders-web", "orders-worker"}
    for job in jobs.values():
        assert job["metrics_path"] == "/metrics"
        assert job["authorization"]["type"] == "Bearer"
    assert config["rule_files"] == ["alerts.yml"]


@pytest.mark.django_db
def test_every_metric_the_rules_name_is_exported(client, settings):
    settings.METRICS_TOKEN = TOKEN
    client.get("/healthz")  # a request, and a task run, so that their series exist
    app.tasks["celery.accumulate"].apply(args=(1,))
    exported = {name for name, _ in scrape(client)}
    exported |= {"up"}  # Prometheus's own
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        exported |= {"celery_queue_length"}  # read from a Redis broker only

    named = set()
    for rule in rules():
        expr = re.sub(r"\b(by|without)\s*\([^)]*\)", "", rule["expr"])  # grouping labels
        expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)  # label matchers, ranges
        # What is left: metric names, functions (followed by a parenthesis), keywords.
        named |= set(re.findall(r"\b([a-z_][a-z0-9_]*)\b(?!\s*\()", expr)) - {"offset"}
    assert {"http_requests_total", "outbox_oldest_age_seconds"} <= named
    assert named <= exported, named - exported
