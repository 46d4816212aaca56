"""The SMS outbox: a text is a row written with the code, sent by a worker on
the `notifications` queue after commit, retried, swept up if its task was
lost, given up (and said so) when it cannot go, and never sent twice."""

import logging
import time
from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django.utils import timezone

from accounts import sms, sms_backends, tasks
from accounts.models import SmsMessage
from accounts.sms_backends import LocmemBackend, SmsRefused
from orders_project.celery import app

pytestmark = pytest.mark.django_db

PHONE = "+14155550123"


class FlakyBackend(LocmemBackend):
    """In-memory texts that fail the next `fail_next` sends, or refuse for good."""

    fail_next = 0
    refuse = False
    calls = 0

    def send(self, phone, body):
        FlakyBackend.calls += 1
        if FlakyBackend.refuse:
            raise SmsRefused("Invalid parameter: PhoneNumber")
        if FlakyBackend.fail_next > 0:
            FlakyBackend.fail_next -= 1
            raise ConnectionError("provider unreachable")
        return super().send(phone, body)


@pytest.fixture
def flaky(settings, sms_outbox):
    settings.SMS_BACKEND = f"{__name__}.FlakyBackend"
    FlakyBackend.fail_next, FlakyBackend.refuse, FlakyBackend.calls = 0, False, 0
    yield FlakyBackend
    FlakyBackend.fail_next, FlakyBackend.refuse, FlakyBackend.calls = 0, False, 0


def queued(count=1, **fields) -> list[SmsMessage]:
    return [
        SmsMessage.objects.create(phone=PHONE, body=f"Your code is 12345{n}.", **fields)
        for n in range(count)
    ]


def test_sending_marks_the_row_sent_and_blanks_it_and_a_second_send_sends_nothing(
    sms_outbox,
):
    (row,) = queued()

    result = sms.sms_send(ids=[row.pk])

    assert result.sent == [row.pk]
    assert [(s.phone, s.body) for s in sms_outbox] == [(PHONE, "Your code is 123450.")]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.body) == ("sent", 1, "")
    assert row.sent_at is not None
    assert sms.sms_send(ids=[row.pk]).sent == []
    assert len(sms_outbox) == 1


def test_the_task_retries_failed_sends_until_they_go_through(flaky, celery_eager, sms_outbox):
    rows = queued(2)
    flaky.fail_next = 2  # both fail on the first try

    # In-process, a retry runs at once instead of after its countdown.
    result = tasks.sms_send.apply(args=[[row.pk for row in rows]], throw=False)

    assert result.get() == {"sent": 2, "failed": 0, "given_up": 0}
    assert len(sms_outbox) == 2
    assert set(SmsMessage.objects.values_list("status", "attempts")) == {("sent", 2)}


def test_a_failed_send_waits_with_a_growing_backoff(flaky):
    (row,) = queued()
    flaky.fail_next = 1

    result = sms.sms_send(ids=[row.pk])

    assert result.failed == [row.pk] and result.retry_in == timedelta(seconds=5)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("queued", 1)
    assert row.last_error == "ConnectionError: provider unreachable"
    assert row.next_attempt_at > timezone.now()
    assert row.body  # kept: it is still to be sent
    delays = [sms.retry_delay(n).total_seconds() for n in range(1, 8)]
    assert delays == [5, 10, 20, 40, 80, 120, 120]


def test_a_text_is_given_up_after_the_last_attempt_and_says_so(flaky, caplog):
    (row,) = queued()
    SmsMessage.objects.filter(pk=row.pk).update(attempts=sms.MAX_ATTEMPTS - 1)
    flaky.fail_next = 1

    with caplog.at_level(logging.ERROR, logger="accounts.sms"):
        result = sms.sms_send(ids=[row.pk])

    assert result.failed == [] and result.given_up == [row.pk]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.body) == ("failed", sms.MAX_ATTEMPTS, "")
    assert "provider unreachable" in row.last_error
    assert [r.levelname for r in caplog.records if "Giving up" in r.message] == ["ERROR"]
    assert sms.sms_due() == []


def test_a_text_the_provider_refuses_is_given_up_at_once(flaky, caplog):
    (row,) = queued()
    flaky.refuse = True

    with caplog.at_level(logging.ERROR, logger="accounts.sms"):
        result = sms.sms_send(ids=[row.pk])

    assert result.given_up == [row.pk] and result.failed == []
    row.refresh_from_db()
    assert (row.status, row.attempts, row.body) == ("failed", 1, "")
    assert "SmsRefused" in row.last_error
    assert "Giving up" in caplog.text


def test_a_text_whose_code_expired_is_given_up_unsent(flaky, sms_outbox):
    (row,) = queued(expires_at=timezone.now() - timedelta(seconds=1))

    result = sms.sms_send(ids=[row.pk])

    assert result.given_up == [row.pk]
    assert flaky.calls == 0 and sms_outbox == []
    row.refresh_from_db()
    assert (row.status, row.body) == ("failed", "")
    assert row.last_error == "Expired before it could be sent."


def test_the_sweep_sends_texts_whose_task_was_lost_but_not_those_just_queued(sms_outbox):
    lost, fresh = queued(2)
    SmsMessage.objects.filter(pk=lost.pk).update(
        next_attempt_at=timezone.now() - sms.SWEEP_GRACE - timedelta(seconds=1)
    )

    assert tasks.sms_sweep.apply().get() == {"sent": 1, "failed": 0, "given_up": 0}

    assert len(sms_outbox) == 1
    assert SmsMessage.objects.get(pk=lost.pk).status == "sent"
    assert SmsMessage.objects.get(pk=fresh.pk).status == "queued"


def test_the_sms_tasks_are_routed_to_the_notifications_queue():
    app.loader.import_default_modules()
    for name in ("accounts.tasks.sms_send", "accounts.tasks.sms_sweep"):
        route = app.amqp.router.route({}, name, (), {})
        assert route["queue"].name == "notifications", name
    assert app.amqp.router.route({}, "accounts.tasks.housekeeping", (), {})["queue"].name == (
        "maintenance"
    )


def test_the_sweep_is_scheduled_in_the_database():
    from django_celery_beat.models import PeriodicTask

    sweep = PeriodicTask.objects.get(name="SMS: send what is due")
    assert sweep.task == "accounts.tasks.sms_sweep"
    assert (sweep.interval.every, sweep.interval.period) == (30, "seconds")


@pytest.mark.slow
def test_a_hanging_broker_neither_fails_nor_slows_the_request_and_the_sweep_sends_later(
    api_client, hanging_broker, sms_outbox, django_capture_on_commit_callbacks, caplog
):
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/auth/otp/start/", {"phone": PHONE}, format="json")
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.content
    assert elapsed < 1.0
    row = SmsMessage.objects.get()
    assert row.status == "queued" and sms_outbox == []
    # The dispatching thread was the one left waiting; the broker goes away and it says so.
    hanging_broker.close()
    deadline = time.monotonic() + 15
    while "the sweep will send them" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Could not hand 1 SMS to a worker; the sweep will send them" in caplog.text

    # The task never arrived; once the grace is over, the sweep sends the text.
    SmsMessage.objects.update(next_attempt_at=timezone.now() - sms.SWEEP_GRACE)
    tasks.sms_sweep.apply().get()
    assert [s.phone for s in sms_outbox] == [PHONE]


def test_a_handler_that_fails_after_commit_loses_nothing(
    monkeypatch, sms_outbox, django_capture_on_commit_callbacks, caplog
):
    def broker_down(ids):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(sms, "_handlers", [broker_down])
    with django_capture_on_commit_callbacks(execute=True):
        row = sms.sms_queue(phone=PHONE, body="Your code is 123456.")

    assert "the sweep will" in caplog.text
    assert sms.sms_due() == []  # not yet: within the grace
    SmsMessage.objects.update(next_attempt_at=timezone.now() - sms.SWEEP_GRACE)
    assert sms.sms_due() == [row.pk]


def test_the_console_backend_writes_the_text_to_the_log(settings, log_lines):
    settings.SMS_BACKEND = "console"
    (row,) = queued()

    sms.sms_send(ids=[row.pk])

    assert any(
        "INFO" in line and f"SMS to {PHONE}: Your code is 123450." in line for line in log_lines()
    )


def test_an_unknown_backend_is_refused_by_the_system_check(settings):
    settings.SMS_BACKEND = "carrier-pigeon"
    with pytest.raises(ImproperlyConfigured):
        sms_backends.get_backend()
    assert "accounts.E001" in {message.id for message in run_checks()}

    settings.SMS_BACKEND = "sns"
    settings.SMS_ALLOWED_COUNTRIES = ["US", "XX"]
    assert {m.id for m in run_checks() if m.id.startswith("accounts.")} == {"accounts.E002"}


def test_housekeeping_drops_texts_past_their_retention(settings):
    old, recent = queued(2)
    SmsMessage.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))

    assert tasks.housekeeping.apply().get()["sms_messages"] == 1
    assert list(SmsMessage.objects.values_list("pk", flat=True)) == [recent.pk]


# --- The admin --------------------------------------------------------------------------


def test_the_admin_lists_texts_with_their_status_and_error_never_their_body(admin_client):
    sent, failed, waiting = queued(3)
    SmsMessage.objects.filter(pk=sent.pk).update(status="sent", body="")
    SmsMessage.objects.filter(pk=failed.pk).update(
        status="failed", body="", last_error="SmsRefused: Invalid parameter"
    )

    page = admin_client.get(reverse("admin:accounts_smsmessage_changelist"))

    assert page.status_code == 200
    html = page.content.decode()
    assert "failed for good" in html and "SmsRefused: Invalid parameter" in html
    assert "Your code is" not in html  # the queued one's live code
    detail = admin_client.get(reverse("admin:accounts_smsmessage_change", args=[waiting.pk]))
    assert detail.status_code == 200
    assert "Your code is" not in detail.content.decode()
    filtered = admin_client.get(
        reverse("admin:accounts_smsmessage_changelist") + "?status__exact=failed"
    )
    assert "SmsRefused" in filtered.content.decode()
    assert admin_client.get(reverse("admin:accounts_smsmessage_add")).status_code == 403
