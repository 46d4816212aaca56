"""The order e-mail outbox: sent once, retried with backoff, never lost."""

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection
from django.utils import timezone

from accounts.tests.factories import UserFactory
from inventory.tests.factories import ProductFactory
from orders import emails, tasks
from orders.models import OrderEmail
from orders.tests.factories import place_order

pytestmark = pytest.mark.django_db

CONFIRMATION = OrderEmail.Kind.CONFIRMATION


class FlakyBackend(EmailBackend):
    """In-memory e-mail that refuses some recipients, or the next N messages."""

    refuse: set[str] = set()
    fail_next = 0

    def send_messages(self, messages):
        for message in messages:
            if FlakyBackend.fail_next > 0:
                FlakyBackend.fail_next -= 1
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            if set(message.to) & FlakyBackend.refuse:
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"No such user")})
        return super().send_messages(messages)


class UnreachableBackend(EmailBackend):
    def open(self):
        raise ConnectionRefusedError(111, "Connection refused")


@pytest.fixture
def flaky(settings):
    settings.EMAIL_BACKEND = f"{__name__}.FlakyBackend"
    FlakyBackend.refuse, FlakyBackend.fail_next = set(), 0
    yield FlakyBackend
    FlakyBackend.refuse, FlakyBackend.fail_next = set(), 0


def queued(count) -> list[OrderEmail]:
    product = ProductFactory(stock=100)
    orders = [place_order(UserFactory(), (product, 1)) for _ in range(count)]
    ids = emails.order_emails_queue(orders=orders, kind=CONFIRMATION)
    return list(OrderEmail.objects.filter(pk__in=ids).order_by("pk"))


def test_sending_stamps_the_row_and_a_second_send_sends_nothing():
    rows = queued(2)
    ids = [row.pk for row in rows]
    assert emails.order_emails_send(ids=ids).sent == ids
    assert len(mail.outbox) == 2
    assert emails.order_emails_send(ids=ids).sent == []
    assert len(mail.outbox) == 2
    for row in OrderEmail.objects.all():
        assert row.sent_at is not None and row.attempts == 1 and row.last_error == ""


@pytest.mark.django_db(transaction=True)
def test_processing_hands_a_batch_s_emails_to_a_worker_only_once_it_committed(
    celery_eager, monkeypatch
):
    product = ProductFactory(stock=5)
    customers = [UserFactory() for _ in range(3)]
    for customer in customers:
        place_order(customer, (product, 1))
    dispatched = []
    real_dispatch = tasks.dispatch_order_emails

    def dispatch(ids):
        # Nothing is handed over while the batch's transaction is open.
        dispatched.append((list(ids), connection.in_atomic_block))
        return real_dispatch(ids)

    monkeypatch.setattr(tasks, "dispatch_order_emails", dispatch)
    assert tasks.process_pending_orders.apply(kwargs={"batch_size": 2}).get()["processed"] == 3
    assert [(len(ids), in_transaction) for ids, in_transaction in dispatched] == [
        (2, False),
        (1, False),
    ]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(c.email for c in customers)


def test_one_refused_recipient_does_not_stop_the_others(flaky):
    rows = queued(3)
    flaky.refuse = {rows[1].order.customer.email}
    before = timezone.now()
    result = emails.order_emails_send(ids=[row.pk for row in rows])

    assert result.sent == [rows[0].pk, rows[2].pk]
    assert result.failed == [rows[1].pk]
    assert result.retry_in == timedelta(seconds=30)
    failed = OrderEmail.objects.get(pk=rows[1].pk)
    assert failed.sent_at is None and failed.attempts == 1
    assert failed.last_error.startswith("SMTPRecipientsRefused")
    assert before + timedelta(seconds=30) <= failed.next_attempt_at
    assert failed.next_attempt_at <= timezone.now() + timedelta(seconds=30)


def test_the_backoff_doubles_up_to_half_an_hour():
    delays = [emails.retry_delay(n).total_seconds() for n in range(1, 9)]
    assert delays == [30, 60, 120, 240, 480, 960, 1800, 1800]


def test_the_task_retries_failed_sends_until_they_go_through(flaky, celery_eager):
    rows = queued(2)
    flaky.fail_next = 2  # the first two attempts fail, whatever the message
    # In-process, a retry runs at once instead of after its countdown.
    result = tasks.send_order_emails.apply(args=[[row.pk for row in rows]], throw=False)
    assert result.get() == {"sent": 2, "failed": 0}
    assert len(mail.outbox) == 2
    attempts = dict(OrderEmail.objects.values_list("pk", "attempts"))
    # Both failed on the first try; the retry (with only the failed rows) sent both.
    assert attempts == {rows[0].pk: 2, rows[1].pk: 2}
    assert not OrderEmail.objects.filter(sent_at__isnull=True).exists()


def test_an_unreachable_mail_server_leaves_every_row_for_later(settings):
    settings.EMAIL_BACKEND = f"{__name__}.UnreachableBackend"
    rows = queued(3)
    result = emails.order_emails_send(ids=[row.pk for row in rows])
    assert result.sent == [] and result.failed == [row.pk for row in rows]
    assert set(OrderEmail.objects.values_list("attempts", "sent_at")) == {(1, None)}


def test_a_row_is_given_up_after_the_last_attempt(flaky):
    (row,) = queued(1)
    flaky.refuse = {row.order.customer.email}
    OrderEmail.objects.filter(pk=row.pk).update(attempts=emails.MAX_ATTEMPTS - 1)
    result = emails.order_emails_send(ids=[row.pk])
    assert result.failed == []  # no more retries
    row.refresh_from_db()
    assert row.attempts == emails.MAX_ATTEMPTS and row.sent_at is None
    flaky.refuse = set()
    assert emails.order_emails_send(ids=[row.pk]).sent == []
    OrderEmail.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(days=1))
    assert emails.order_emails_due() == []


def test_the_sweep_finds_rows_whose_task_was_lost_but_not_fresh_ones():
    lost, _fresh, sent = queued(3)
    long_ago = timezone.now() - timedelta(minutes=10)
    OrderEmail.objects.filter(pk__in=[lost.pk, sent.pk]).update(next_attempt_at=long_ago)
    OrderEmail.objects.filter(pk=sent.pk).update(sent_at=timezone.now())
    assert emails.order_emails_due() == [lost.pk]


def test_a_broker_that_is_down_when_dispatching_loses_nothing(monkeypatch, caplog):
    (row,) = queued(1)

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(tasks.send_order_emails, "apply_async", broker_down)
    assert tasks.dispatch_order_emails([row.pk]) is False
    assert "next processing run will send them" in caplog.text
    row.refresh_from_db()
    assert row.sent_at is None
    OrderEmail.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=5)
    )
    assert emails.order_emails_due() == [row.pk]


def test_an_email_whose_task_was_lost_is_sent_by_a_later_processing_run(
    monkeypatch, celery_eager, django_capture_on_commit_callbacks
):
    product = ProductFactory(stock=5)
    customer = UserFactory()
    place_order(customer, (product, 1))

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(tasks.send_order_emails, "apply_async", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.process_pending_orders.apply().get()["processed"] == 1
    assert mail.outbox == []
    row = OrderEmail.objects.get()
    assert row.sent_at is None

    # The next run, soon after: the row is not due yet (its task may still be on its way).
    with django_capture_on_commit_callbacks(execute=True):
        tasks.process_pending_orders.apply().get()
    assert mail.outbox == []
    # A run after the grace period sends it, once.
    OrderEmail.objects.update(next_attempt_at=timezone.now() - emails.SWEEP_GRACE)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            tasks.process_pending_orders.apply().get()
    assert [m.to for m in mail.outbox] == [[customer.email]]
