"""The `sns` SMS backend against moto's server: a real HTTP endpoint speaking
the SNS protocol (signed Query API requests, XML answers), started in this
process. What the server received is read from moto's SNS backend: the
number and the message, as SNS would text them."""

import logging
import re
import socket

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer
from moto.sns.models import sns_backends

from accounts import sms
from accounts.models import SmsMessage, User

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

PHONE = "+14155550123"
REGION = "eu-west-1"


@pytest.fixture(scope="module")
def moto_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def sns(settings, moto_server):
    """SMS_BACKEND=sns pointed at moto's server; yields what SNS "texted"."""
    settings.SMS_BACKEND = "sns"
    settings.AWS_SNS_ENDPOINT_URL = moto_server
    settings.AWS_REGION = REGION
    settings.AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
    settings.AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    settings.SMS_SEND_TIMEOUT = 2.0
    backend = sns_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.sms_messages.clear()
    yield backend.sms_messages
    backend.sms_messages.clear()


def test_a_login_code_is_published_to_sns_and_logs_the_customer_in(api_client, sns, sending):
    with sending():
        response = api_client.post("/api/v1/auth/otp/start/", {"phone": PHONE}, format="json")
    assert response.status_code == 200, response.content

    row = SmsMessage.objects.get()
    assert row.status == "sent", row.last_error
    assert set(sns) == {row.provider_id}  # SNS's MessageId, kept to trace the text
    number, message = sns[row.provider_id]
    assert number == PHONE
    code = re.search(r"\b(\d{6})\b", message).group(1)
    assert message == (
        f"Your Orders login code is {code}. It expires in 5 minutes. Do not share it."
    )
    assert row.body == ""

    verified = api_client.post(
        "/api/v1/auth/otp/verify/", {"phone": PHONE, "code": code}, format="json"
    )
    assert verified.status_code == 200, verified.content
    assert str(User.objects.get().phone) == PHONE


def test_a_message_sns_refuses_is_given_up_at_once_and_logged(sns, caplog):
    # Not E.164 (no country code starts with 0): SNS answers InvalidParameter, and would again.
    row = SmsMessage.objects.create(phone="+04155550123", body="Your code is 123456.")

    with caplog.at_level(logging.ERROR, logger="accounts.sms"):
        result = sms.sms_send(ids=[row.pk])

    assert result.given_up == [row.pk] and result.failed == []
    row.refresh_from_db()
    assert (row.status, row.attempts, row.body) == ("failed", 1, "")
    assert "InvalidParameter" in row.last_error
    assert "Giving up" in caplog.text
    assert sns == {}


def test_an_unreachable_sns_endpoint_leaves_the_text_for_a_retry(sns, settings, moto_server):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.AWS_SNS_ENDPOINT_URL = f"http://127.0.0.1:{port}"
    row = SmsMessage.objects.create(phone=PHONE, body="Your code is 123456.")

    result = sms.sms_send(ids=[row.pk])

    assert result.failed == [row.pk]
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("queued", 1)
    assert "EndpointConnectionError" in row.last_error
    assert row.body == "Your code is 123456."  # still owed
    assert sns == {}

    settings.AWS_SNS_ENDPOINT_URL = moto_server  # SNS is back: the retry sends it
    assert sms.sms_send(ids=[row.pk]).sent == [row.pk]
    assert list(sns.values()) == [(PHONE, "Your code is 123456.")]


def test_sns_accepts_the_message_attributes_with_a_sender_id(sns, settings):
    settings.SMS_SENDER_ID = "Orders"
    row = SmsMessage.objects.create(phone=PHONE, body="Your code is 123456.")

    assert sms.sms_send(ids=[row.pk]).sent == [row.pk], SmsMessage.objects.get().last_error

    assert sns[SmsMessage.objects.get().provider_id] == (PHONE, "Your code is 123456.")
