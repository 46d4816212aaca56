"""GET /metrics in one process (SPEC §11): who may read it, and that the
numbers move when requests are answered, orders are placed and moved, and the
outboxes back up. The multi-process aggregation under gunicorn is in
test_metrics_gunicorn.py; the Celery worker's endpoint in test_celery_metrics.py."""

import uuid
from datetime import timedelta

import pytest
import redis
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from accounts.tests.factories import UserFactory
from core import metrics
from core.models import Event
from core.testing import assert_error, client_for
from inventory.tests.factories import ProductFactory
from orders import processing, services
from orders.emails import MAX_ATTEMPTS
from orders.models import Order, OrderEmail
from orders.schedules import PROCESSING
from orders.statuses import OrderStatus
from orders.tests.factories import place_order
from webhooks import services as webhooks
from webhooks.models import Delivery, Subscription
from webhooks.tests.receiver import Answer, Receiver

from .metrics_helpers import TOKEN, parse, scrape, value

ORDER_DETAIL = "api/v1/orders/(?P<pk>[0-9]{1,18})/?$"


@pytest.fixture(autouse=True)
def metrics_settings(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []
    return settings


# --- The guard ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_bearer_token_reads_the_metrics(client):
    samples = scrape(client)
    assert value(samples, "metrics_collector_up", collector="events") == 1


@pytest.mark.parametrize(
    "authorization",
    [None, f"Bearer {TOKEN}x", f"Token {TOKEN}", TOKEN, "Bearer ", f"Basic {TOKEN}"],
)
def test_without_the_token_metrics_is_the_json_404_of_an_unknown_url(client, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    response = client.get("/metrics", **headers)
    assert_error(response, 404, "not_found")


def test_with_no_token_and_no_addresses_configured_nobody_reads_the_metrics(
    client, metrics_settings
):
    metrics_settings.METRICS_TOKEN = ""
    assert_error(client.get("/metrics", HTTP_AUTHORIZATION="Bearer "), 404, "not_found")
    assert_error(client.get("/metrics", REMOTE_ADDR="127.0.0.1"), 404, "not_found")


@pytest.mark.django_db
def test_a_client_inside_an_allowed_network_reads_the_metrics_without_a_token(
    client, metrics_settings
):
    metrics_settings.METRICS_ALLOWED_IPS = ["192.0.2.7", "10.20.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    assert_error(client.get("/metrics", REMOTE_ADDR="10.21.0.1"), 404, "not_found")
    assert_error(client.get("/metrics", REMOTE_ADDR="192.0.2.8"), 404, "not_found")


@pytest.mark.django_db
def test_behind_proxies_the_address_they_forward_counts_and_a_forged_one_does_not(
    client, metrics_settings
):
    metrics_settings.METRICS_ALLOWED_IPS = ["10.20.0.0/16"]
    # No proxy configured: X-Forwarded-For is the client's to write, so ignored.
    forged = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.20.0.1")
    assert_error(forged, 404, "not_found")

    metrics_settings.REST_FRAMEWORK = {**metrics_settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # One proxy: the address it appended (the last one) is the client's.
    through_proxy = client.get(
        "/metrics", REMOTE_ADDR="172.16.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.20.0.1"
    )
    assert through_proxy.status_code == 200
    prepended = client.get(
        "/metrics", REMOTE_ADDR="172.16.0.2", HTTP_X_FORWARDED_FOR="10.20.0.1, 203.0.113.9"
    )
    assert_error(prepended, 404, "not_found")


def test_only_get_reads_the_metrics_and_others_learn_nothing_from_other_methods(client):
    assert_error(client.post("/metrics"), 404, "not_found")
    refused = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert_error(refused, 405, "method_not_allowed")
    assert refused["Allow"] == "GET, HEAD"


# --- Requests -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_requests_are_counted_by_route_template_method_and_status(client):
    customer = UserFactory()
    api = client_for(customer)
    before = scrape(client)

    for order_id in (991, 992, 993):  # three paths, one route
        assert api.get(f"/api/v1/orders/{order_id}/").status_code == 404
    assert api.get("/healthz").status_code == 200
    assert client.get("/no/such/page/").status_code == 404
    assert client.generic("BREW", "/healthz").status_code == 405

    after = scrape(client)

    def delta(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    detail = {"route": ORDER_DETAIL, "method": "GET", "status": "404"}
    assert delta("http_requests_total", **detail) == 3
    assert delta("http_request_duration_seconds_count", **detail) == 3
    assert delta("http_request_duration_seconds_bucket", **detail, le="+Inf") == 3
    assert delta("http_requests_total", route="^healthz/?$", method="GET", status="200") == 1
    # No raw path and no made-up method becomes a label of its own.
    assert delta("http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert delta("http_requests_total", route="^healthz/?$", method="other", status="405") == 1
    assert not any("991" in str(labels) for _, labels in after)


# --- Orders placed and moved ----------------------------------------------------------------


def counts(client) -> dict:
    samples = scrape(client)
    return {
        "placed": value(samples, "orders_placed_total"),
        "failed": value(samples, "orders_failed_total"),
        **{
            status: value(samples, "orders_status_changes_total", to_status=status)
            for status in (OrderStatus.PROCESSING, OrderStatus.CANCELLED, OrderStatus.FAILED)
        },
    }


def changed(before: dict, after: dict) -> dict:
    return {key: after[key] - before[key] for key in before if after[key] != before[key]}


@pytest.mark.django_db
def test_an_order_placed_is_counted_once_and_its_idempotent_replay_is_not(
    client, django_capture_on_commit_callbacks
):
    customer, product = UserFactory(), ProductFactory(stock=3)
    api = client_for(customer)
    body = {"items": [{"product_id": product.pk, "quantity": 1}]}
    before = counts(client)

    with django_capture_on_commit_callbacks(execute=True):
        first = api.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    with django_capture_on_commit_callbacks(execute=True):
        replay = api.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    with django_capture_on_commit_callbacks(execute=True):
        refused = api.post(
            "/api/v1/orders/",
            {"items": [{"product_id": product.pk, "quantity": 9}]},
            format="json",
        )

    assert (first.status_code, replay.status_code, refused.status_code) == (201, 201, 409)
    assert replay["Idempotent-Replayed"] == "true"
    assert changed(before, counts(client)) == {"placed": 1}


@pytest.mark.django_db
def test_moves_are_counted_by_the_status_they_reach_failures_too(
    client, django_capture_on_commit_callbacks
):
    product = ProductFactory(stock=10)
    customers = UserFactory.create_batch(4)
    orders = [place_order(customer, (product, 1)) for customer in customers]
    customers[3].is_active = False  # processing refuses this one: failed
    customers[3].save()
    before = counts(client)

    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(order=orders[0], actor=customers[0])
    with django_capture_on_commit_callbacks(execute=True):
        run = processing.process_pending_orders(batch_size=10, time_budget=60)

    assert (run.processed, run.failed) == (2, 1)
    assert changed(before, counts(client)) == {
        OrderStatus.CANCELLED: 1,
        OrderStatus.PROCESSING: 2,
        OrderStatus.FAILED: 1,
        "failed": 1,
    }


@pytest.mark.django_db
def test_a_move_that_rolls_back_is_not_counted(client, django_capture_on_commit_callbacks):
    customer = UserFactory()
    order = place_order(customer, (ProductFactory(stock=2), 1))
    before = counts(client)

    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                services.order_cancel(order=order, actor=customer)
                raise RuntimeError("after the move, before the commit")
        except RuntimeError:
            pass

    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING
    assert changed(before, counts(client)) == {}


# --- Backlogs, read at scrape time -------------------------------------------------------------


def backlog(samples, outbox: str) -> tuple[float, float]:
    return (
        value(samples, "outbox_backlog", outbox=outbox),
        value(samples, "outbox_oldest_age_seconds", outbox=outbox),
    )


def age(row, model, minutes: int) -> None:
    """Pretend `row` was written `minutes` ago."""
    model.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


@pytest.mark.django_db
def test_the_outboxes_backlog_and_its_age_show_and_drain(client):
    customer = UserFactory()
    order = place_order(customer, (ProductFactory(stock=5), 1))
    assert backlog(scrape(client), "events") == (1, pytest.approx(0, abs=5))
    event = Event.objects.get()
    age(event, Event, 7)
    unsent = OrderEmail.objects.create(order=order, kind=OrderEmail.Kind.CONFIRMATION)
    age(unsent, OrderEmail, 12)
    other = place_order(UserFactory(), (ProductFactory(stock=5), 1))
    OrderEmail.objects.create(
        order=other, kind=OrderEmail.Kind.CONFIRMATION, attempts=MAX_ATTEMPTS
    )  # given up
    subscription = Subscription.objects.create(
        url="https://shop.example/hooks", events=["*"], secret="whsec_dGVzdA=="
    )
    delivery = Delivery.objects.create(
        subscription=subscription, event=event, aggregate="order", aggregate_id=order.pk
    )
    age(delivery, Delivery, 9)
    Subscription.objects.filter(pk=subscription.pk).update(
        failing_since=timezone.now() - timedelta(minutes=30)
    )

    samples = scrape(client)
    assert backlog(samples, "events") == (Event.objects.count(), pytest.approx(7 * 60, abs=5))
    assert backlog(samples, "emails") == (1, pytest.approx(12 * 60, abs=5))
    assert value(samples, "outbox_emails_given_up") == 1
    assert backlog(samples, "webhook_deliveries") == (1, pytest.approx(9 * 60, abs=5))
    assert value(samples, "webhook_subscriptions_failing") == 1
    assert value(samples, "webhook_subscription_failing_seconds") == pytest.approx(1800, abs=5)

    Event.objects.update(published_at=timezone.now())
    OrderEmail.objects.filter(pk=unsent.pk).update(sent_at=timezone.now())
    Delivery.objects.update(status=Delivery.Status.SUCCEEDED)
    Subscription.objects.update(failing_since=None)

    samples = scrape(client)
    for outbox in ("events", "emails", "webhook_deliveries"):
        assert backlog(samples, outbox) == (0, 0), outbox
    assert value(samples, "webhook_subscriptions_failing") == 0


@pytest.mark.django_db
def test_a_stalled_processing_shows_as_an_old_pending_order_beside_the_interval(client):
    order = place_order(UserFactory(), (ProductFactory(stock=5), 1))
    age(order, Order, 10)
    schedule = PeriodicTask.objects.select_related("interval").get(name=PROCESSING)

    samples = scrape(client)
    assert value(samples, "orders_pending") == 1
    assert value(samples, "orders_pending_oldest_age_seconds") == pytest.approx(600, abs=5)
    assert value(samples, "orders_processing_interval_seconds") == (
        schedule.interval.schedule.run_every.total_seconds()
    )

    # Staff holding processing on purpose: no interval, so nothing to alert on.
    PeriodicTask.objects.filter(pk=schedule.pk).update(enabled=False)
    assert value(scrape(client), "orders_processing_interval_seconds") is None


@pytest.mark.django_db
def test_a_collector_that_fails_is_left_out_and_says_so_while_the_rest_show(client, monkeypatch):
    def broken():
        raise ConnectionError("the database went away")

    monkeypatch.setitem(metrics._collectors, "broken", broken)

    samples = scrape(client)

    assert value(samples, "metrics_collector_up", collector="broken") == 0
    assert value(samples, "metrics_collector_up", collector="order_emails") == 1
    assert value(samples, "outbox_backlog", outbox="emails") == 0


@pytest.mark.django_db
def test_the_celery_queues_length_is_read_from_the_redis_broker(client, metrics_settings):
    if not metrics_settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs the Redis broker: set REDIS_URL")
    queue = f"test-metrics-{uuid.uuid4().hex}"
    metrics_settings.CELERY_TASK_ROUTES = {"some.task": {"queue": queue}}
    broker = redis.Redis.from_url(metrics_settings.CELERY_BROKER_URL)
    try:
        broker.lpush(queue, "m1", "m2")
        broker.lpush(f"{queue}\x06\x169", "urgent")  # kombu's list for priority 9
        samples = scrape(client)
    finally:
        broker.delete(queue, f"{queue}\x06\x169")
        broker.close()

    assert value(samples, "celery_queue_length", queue=queue) == 3
    # The default queue, where a task without a route goes, is read too.
    assert value(samples, "celery_queue_length", queue="maintenance") is not None


def test_the_exposition_parses_as_prometheus_text(client, db):
    # `parse` refuses a metric name declared twice, as Prometheus does: the
    # backlog of three apps must come out as one family.
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    text = response.content.decode()
    assert text.count("# TYPE outbox_backlog gauge") == 1
    assert parse(text)


@pytest.mark.django_db
def test_webhook_attempts_are_counted_by_outcome_and_a_delivery_that_gives_up_too(
    client, metrics_settings, django_capture_on_commit_callbacks
):
    metrics_settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver is on 127.0.0.1
    receiver = Receiver()
    try:
        webhooks.subscription_create(url=receiver.url, events=["*"])
        place_order(UserFactory(), (ProductFactory(stock=5), 1))
        place_order(UserFactory(), (ProductFactory(stock=5), 1))
        answers = iter([Answer(status=200), Answer(status=410)])  # 410: gone, give up
        receiver.answer = lambda request: next(answers)
        before = scrape(client)
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.events_fan_out()
            report = webhooks.deliveries_send()
    finally:
        receiver.close()
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert (report.sent, report.succeeded) == (2, 1)
    assert delta("webhook_delivery_attempts_total", outcome="success") == 1
    assert delta("webhook_delivery_attempts_total", outcome="failure") == 1
    assert delta("webhook_deliveries_failed_total") == 1
    # Read from the table: the web shows it whichever worker sent.
    assert value(before, "outbox_failed", outbox="webhook_deliveries") == 0
    assert value(after, "outbox_failed", outbox="webhook_deliveries") == 1
    assert Delivery.objects.filter(status=Delivery.Status.FAILED).count() == 1
