"""Webhook deliveries against a real HTTP receiver (SPEC §9): signed, at
least once, in order per order, retried from the database, refused to
private targets."""

import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connections, transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from accounts.tests.factories import StaffFactory, UserFactory
from core.models import Event
from core.testing import BASE_DIR, run_together
from inventory.tests.factories import ProductFactory
from orders import services as orders
from orders.statuses import OrderStatus
from orders.tests.factories import place_order
from webhooks import kick, services, targets, tasks
from webhooks.models import Attempt, Delivery, Subscription
from webhooks.tests.receiver import Answer, Receiver

pytestmark = pytest.mark.django_db

S = OrderStatus


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(autouse=True)
def _local_targets(settings):
    # The receiver listens on 127.0.0.1 over plain HTTP: development's setting.
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_TIMEOUT = 2
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 300, 1800]
    kick.forget_subscribers()


def subscribe(receiver, events=("*",)) -> tuple[Subscription, str]:
    return services.subscription_create(url=receiver.url, events=list(events))


def placed(product=None, customer=None):
    return place_order(customer or UserFactory(), (product or ProductFactory(stock=50), 1))


def send() -> services.SendReport:
    services.events_fan_out()
    return services.deliveries_send()


def due_now() -> None:
    """Bring every pending delivery's next try to now (no waiting in tests)."""
    Delivery.objects.filter(status="pending").update(next_attempt_at=timezone.now())


def test_a_delivery_is_the_event_signed_as_standard_webhooks_verify_it(receiver):
    subscription, secret = subscribe(receiver)
    order = placed()

    assert send().succeeded == 1

    (request,) = receiver.received
    body = Webhook(secret).verify(request.body, request.headers)  # raises if the signature is off
    event = Event.objects.get(type="order.created")
    assert request.webhook_id == event.webhook_id
    assert body["id"] == event.webhook_id and body["type"] == "order.created"
    assert body["data"]["order"]["id"] == order.pk
    assert body["data"]["order"]["items"][0]["quantity"] == 1
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.delivered_at is not None
    assert subscription.pk == delivery.subscription_id


def test_a_signature_with_another_secret_does_not_verify(receiver):
    subscribe(receiver)
    placed()
    send()
    (request,) = receiver.received
    with pytest.raises(Exception, match=r"[Ss]ignature"):
        Webhook("whsec_" + "A" * 32).verify(request.body, request.headers)


def test_after_a_rotation_both_secrets_sign_for_a_day_then_only_the_new(receiver):
    subscription, old = subscribe(receiver)
    new = services.subscription_rotate_secret(subscription=subscription)
    placed()
    send()
    request = receiver.received[-1]
    assert Webhook(old).verify(request.body, request.headers)
    assert Webhook(new).verify(request.body, request.headers)
    assert len(request.headers["webhook-signature"].split(" ")) == 2

    Subscription.objects.update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    placed()
    send()
    request = receiver.received[-1]
    assert request.headers["webhook-signature"].count("v1,") == 1
    assert Webhook(new).verify(request.body, request.headers)


def test_a_receiver_answering_500_then_200_gets_the_same_id_twice_and_nothing_else(receiver):
    subscribe(receiver)
    receiver.script(Answer(500, body="boom"))
    placed()

    first = send()
    assert (first.sent, first.succeeded) == (1, 0)
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code == 500
    # The next try waits on the schedule (5 s, with 10 % jitter).
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 4 <= wait <= 6
    assert send().sent == 0  # not due yet

    due_now()
    assert send().succeeded == 1

    assert len(receiver.received) == 2
    assert receiver.ids()[0] == receiver.ids()[1]
    tries = list(Attempt.objects.order_by("id").values_list("status_code", "response_body"))
    assert tries == [(500, "boom"), (200, "ok")]


def test_a_retry_after_longer_than_the_schedule_is_honoured(receiver):
    subscribe(receiver)
    receiver.script(Answer(503, headers={"Retry-After": "120"}))
    placed()
    send()
    wait = (Delivery.objects.get().next_attempt_at - timezone.now()).total_seconds()
    assert 115 <= wait <= 125


def test_every_failure_is_retried_on_the_schedule_then_the_delivery_has_failed(receiver):
    subscribe(receiver)
    receiver.answer = lambda request: Answer(302, headers={"Location": "https://elsewhere/"})
    placed()
    for _ in range(4):  # the first try and three retries
        due_now()
        send()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 4, 302)
    assert len(receiver.received) == 4  # redirects are not followed
    due_now()
    assert send().sent == 0


def test_410_gone_disables_the_subscription_at_once(receiver):
    subscription, _ = subscribe(receiver)
    receiver.script(Answer(410))
    placed()
    send()
    placed()
    due_now()

    assert send().sent == 0
    subscription.refresh_from_db()
    assert subscription.is_active is False
    assert "410" in subscription.disabled_reason
    assert Delivery.objects.filter(status="failed").count() == 1
    # While it is off, new events are not queued for it.
    assert not Delivery.objects.filter(status="pending").exists()


def test_a_subscription_failing_for_five_days_is_disabled_and_staff_are_mailed(receiver):
    StaffFactory(email="ops@example.com", is_superuser=True)
    subscription, _ = subscribe(receiver)
    receiver.answer = lambda request: Answer(500)
    placed()
    send()
    Subscription.objects.update(failing_since=timezone.now() - timedelta(days=5, minutes=1))
    due_now()

    send()
    subscription.refresh_from_db()
    assert subscription.is_active is False
    assert "5 days" in subscription.disabled_reason


@pytest.mark.django_db(transaction=True)
def test_the_staff_mail_goes_out_when_five_days_of_failures_disable_it(receiver):
    StaffFactory(email="ops@example.com", is_superuser=True)
    subscription, _ = subscribe(receiver)
    receiver.answer = lambda request: Answer(500)
    with transaction.atomic():
        placed()
    services.deliveries_send()  # nothing fanned out yet
    services.events_fan_out()
    Subscription.objects.update(failing_since=timezone.now() - timedelta(days=6))

    services.deliveries_send()

    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
    assert subscription.url in mail.outbox[0].body


def test_a_receiver_that_hangs_is_cut_at_the_timeout(receiver, settings):
    settings.WEBHOOK_TIMEOUT = 0.5
    subscribe(receiver)
    receiver.script(Answer(200, delay=3))
    placed()

    started = time.monotonic()
    report = send()
    took = time.monotonic() - started

    assert report.succeeded == 0 and took < 2.5
    attempt = Attempt.objects.get()
    assert attempt.status_code is None and "No answer within" in attempt.error
    assert 400 <= attempt.duration_ms <= 2000
    assert Delivery.objects.get().status == "pending"


def test_one_order_s_events_arrive_in_order_a_later_one_waits_for_a_retried_one(receiver):
    subscribe(receiver)
    receiver.script(Answer(500))
    order = placed()
    other = placed()
    orders.order_transition(order=order, to_status=S.PROCESSING, actor=None)

    send()  # order's first event fails; its second waits; the other order goes on
    assert [r.json["type"] for r in receiver.received] == ["order.created", "order.created"]
    assert receiver.received[1].json["data"]["order"]["id"] == other.pk
    due_now()
    send()  # the failed one again; the second still waits behind it (it was pending)
    send()
    types = [
        (r.json["data"]["order"]["id"], r.json["type"])
        for r in receiver.received
        if r.json["data"]["order"]["id"] == order.pk
    ]
    assert types == [
        (order.pk, "order.created"),
        (order.pk, "order.created"),
        (order.pk, "order.status_changed"),
    ]


def test_only_the_events_a_subscription_asks_for_are_sent_to_it(receiver):
    subscribe(receiver, events=["order.status_changed"])
    order = placed()
    orders.order_transition(order=order, to_status=S.PROCESSING, actor=None)
    send()
    assert [r.json["type"] for r in receiver.received] == ["order.status_changed"]
    assert receiver.received[0].json["data"]["from"] == "pending"


def test_a_ping_goes_to_its_subscription_only(receiver):
    subscription, _ = subscribe(receiver, events=["order.created"])
    other = Receiver()
    try:
        subscribe(other)
        services.subscription_ping(subscription=subscription)
        send()
        assert [r.json["type"] for r in receiver.received] == ["webhook.ping"]
        assert other.received == []
    finally:
        other.close()


def test_a_redelivery_sends_the_same_event_with_the_same_id_again(receiver):
    subscribe(receiver)
    placed()
    send()
    services.delivery_redeliver(delivery=Delivery.objects.get())
    send()
    assert len(receiver.received) == 2 and len(set(receiver.ids())) == 1
    assert Delivery.objects.filter(status="succeeded").count() == 2


# --- Targets ---------------------------------------------------------------------


def test_a_private_target_is_refused_when_subscribing(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    for url, resolved in [
        ("https://internal.example/hooks", ["10.1.2.3"]),
        ("https://localhost/hooks", ["127.0.0.1"]),
        ("https://metadata.example/", ["169.254.169.254"]),
        ("https://v6.example/", ["::1"]),
    ]:
        monkeypatch.setattr(targets, "resolve", lambda host, port, r=resolved: r)
        with pytest.raises(services.InvalidSubscription) as refused:
            services.subscription_create(url=url, events=["*"])
        assert refused.value.field == "url"
    monkeypatch.setattr(targets, "resolve", lambda host, port: ["93.184.216.34"])
    with pytest.raises(services.InvalidSubscription, match="https"):
        services.subscription_create(url="http://shop.example/hooks", events=["*"])
    subscription, _ = services.subscription_create(url="https://shop.example/hooks", events=["*"])
    assert subscription.pk


def test_a_target_whose_name_now_resolves_to_a_private_address_is_refused_at_send_time(
    receiver, settings, monkeypatch
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    monkeypatch.setattr(targets, "resolve", lambda host, port: ["93.184.216.34"])
    services.subscription_create(url=f"https://shop.example:{receiver.port}/hooks", events=["*"])
    # The shop's DNS now points at this machine.
    monkeypatch.setattr(targets, "resolve", lambda host, port: ["127.0.0.1"])
    placed()

    report = send()

    assert report.sent == 1 and report.succeeded == 0
    assert receiver.received == []
    assert "loopback" in Attempt.objects.get().error
    assert Delivery.objects.get().status == "pending"  # retried: the DNS may be fixed


# --- Workers, the broker, and killed processes (PostgreSQL, real threads) ----------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_at_once_never_send_one_delivery_twice(receiver):
    subscribe(receiver)
    receiver.answer = lambda request: Answer(200, delay=0.01)
    product = ProductFactory(stock=100)
    for _ in range(30):
        placed(product)
    services.events_fan_out()

    def worker(i):
        sent = 0
        while report := services.deliveries_send(limit=3):
            if not report.sent:
                break
            sent += report.sent
        return sent

    sent = run_together(2, worker)

    assert sum(sent) == 30, sent
    assert len(receiver.received) == 30 and len(set(receiver.ids())) == 30
    assert Delivery.objects.filter(status="succeeded").count() == 30


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_at_commit_the_sweep_still_delivers(
    receiver, monkeypatch, celery_eager
):
    subscribe(receiver)

    def broker_down():
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(kick, "_send", broker_down)
    with transaction.atomic():
        placed()
    assert receiver.received == []  # the kick was lost
    assert Event.objects.filter(published_at__isnull=True).count() == 1

    tasks.deliver_webhooks.apply().get()  # what beat runs every few seconds

    assert [r.json["type"] for r in receiver.wait_for(1)] == ["order.created"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_events_reach_a_subscriber_right_after_commit(receiver, celery_eager):
    subscribe(receiver)
    customer = UserFactory()
    product = ProductFactory(stock=10)
    with transaction.atomic():
        order = place_order(customer, (product, 1))
    orders.order_cancel(order=order, actor=customer)

    got = receiver.wait_for(2, timeout=2)

    assert [(r.json["type"], r.json["data"]["order"]["status"]) for r in got] == [
        ("order.created", "pending"),
        ("order.status_changed", "cancelled"),
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_subscription_deleted_while_a_try_is_recorded_goes_whole(receiver, monkeypatch):
    """The worker holds its delivery while it writes the try; the delete
    waits for it, then takes the try with the rest of the log."""
    subscription, _ = subscribe(receiver)
    placed()
    services.events_fan_out()
    recording = threading.Event()
    count_attempt = services.metrics.count_attempt

    def slow_count(**kwargs):
        recording.set()
        time.sleep(0.5)  # the delivery is locked, its try not yet written
        count_attempt(**kwargs)

    monkeypatch.setattr(services.metrics, "count_attempt", slow_count)

    def work(i):
        if i == 0:
            return services.deliveries_send().sent
        assert recording.wait(5)
        services.subscription_delete(subscription=subscription)
        return "deleted"

    assert run_together(2, work) == [1, "deleted"]
    assert not (Subscription.objects.exists() or Delivery.objects.exists())
    assert not Attempt.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_try_of_a_delivery_deleted_while_it_was_sent_is_dropped(receiver):
    subscription, _ = subscribe(receiver)
    placed()
    services.events_fan_out()

    def delete_then_answer(request):
        # Another connection (the receiver's thread), as staff deleting it
        # in the admin while the worker waits for this answer.
        services.subscription_delete(subscription=subscription)
        connections.close_all()
        return Answer(200)

    receiver.answer = delete_then_answer
    services.deliveries_send()  # no IntegrityError

    assert len(receiver.received) == 1
    assert not (Delivery.objects.exists() or Attempt.objects.exists())


KILLED_SENDER = """
import django
django.setup()
from webhooks import services
services.events_fan_out()
services.deliveries_send()
"""


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_send_leaves_the_delivery_to_be_sent_again(receiver):
    from django.db import connection

    subscribe(receiver)
    with transaction.atomic():
        placed()
    receiver.script(Answer(200, delay=30))  # the first send hangs: the worker dies in it
    db = connection.settings_dict
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DEBUG": "1",
        "READ_DOT_ENV": "0",
        "DJANGO_SETTINGS_MODULE": "orders_project.settings",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
        "WEBHOOK_TIMEOUT": "60",
        "PATH": "/usr/bin:/bin",
    }
    worker = subprocess.Popen([sys.executable, "-c", KILLED_SENDER], cwd=BASE_DIR, env=env)
    try:
        receiver.wait_for(1, timeout=30)
    finally:
        worker.kill()  # SIGKILL, mid-send
        worker.wait(timeout=10)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert delivery.leased_until > timezone.now()  # held: no one sends it twice at once
    assert services.deliveries_send().sent == 0
    # The lease runs out (WEBHOOK_TIMEOUT + 30 s); then it is sent again.
    Delivery.objects.update(leased_until=timezone.now() - timedelta(seconds=1))
    assert services.deliveries_send().succeeded == 1
    assert len(receiver.received) == 2 and len(set(receiver.ids())) == 1


def test_old_deliveries_are_dropped_by_housekeeping(receiver, settings):
    settings.WEBHOOK_RETENTION_DAYS = 14
    subscribe(receiver)
    placed()
    placed()
    send()
    old = Delivery.objects.order_by("id").first()
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=15))

    assert tasks.housekeeping.apply().get() == {"deliveries": 1}
    assert list(Delivery.objects.values_list("pk", flat=True)) != [old.pk]
    assert Delivery.objects.count() == 1
