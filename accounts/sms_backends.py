"""Where texts go: SMS_BACKEND picks one, as EMAIL_BACKEND does for mail.

- `console` (the default): writes the message to the log (the worker's
  console under `make run`), and sends nothing.
- `locmem`: keeps messages in `outbox`, a list, for tests (as Django's
  `mail.outbox`).
- `sns`: Amazon SNS `Publish` to a phone number, through boto3, with
  AWS_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (else boto3's own
  credential chain: an instance or task role) and AWS_SNS_ENDPOINT_URL
  (empty: AWS itself; tests point it at moto's server).

A dotted path to a class of one's own works too. A backend's `send(phone,
body)` returns the provider's message id ("" when there is none), raises
`SmsRefused` when the provider refuses that message for good (a retry
would be refused again), and anything else for a failure worth retrying.
"""

import functools
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SmsRefused(Exception):
    """The provider refused this message for good: do not retry it."""


@dataclass(frozen=True)
class Sms:
    phone: str
    body: str


# What the locmem backend "sent", oldest first.
outbox: list[Sms] = []


class BaseSmsBackend:
    def send(self, phone: str, body: str) -> str:
        raise NotImplementedError


class ConsoleBackend(BaseSmsBackend):
    """Development: the message goes to the log, code included."""

    def send(self, phone: str, body: str) -> str:
        logger.info("SMS to %s: %s", phone, body)
        return ""


class LocmemBackend(BaseSmsBackend):
    """Tests: the message is appended to `outbox`."""

    def send(self, phone: str, body: str) -> str:
        outbox.append(Sms(phone=phone, body=body))
        return ""


# SNS error codes that mean this message will never be accepted.
SNS_REFUSALS = frozenset({"InvalidParameter", "InvalidParameterValue", "ParameterValueInvalid"})


@functools.lru_cache(maxsize=8)
def _sns_client(endpoint_url: str, region: str, key_id: str, secret: str, timeout: float):
    import boto3
    from botocore.config import Config

    credentials = {"aws_access_key_id": key_id, "aws_secret_access_key": secret} if key_id else {}
    return boto3.client(
        "sns",
        region_name=region,
        endpoint_url=endpoint_url or None,
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            # One try per send: the outbox retries, with its own backoff, and a
            # worker must not sit in boto3's retry loop for a provider that is down.
            retries={"total_max_attempts": 1},
        ),
        **credentials,
    )


class SnsBackend(BaseSmsBackend):
    """Amazon SNS: `Publish(PhoneNumber=..., Message=...)`, as a
    transactional message (the higher-priority route meant for codes)."""

    def __init__(self):
        self.client = _sns_client(
            settings.AWS_SNS_ENDPOINT_URL,
            settings.AWS_REGION,
            settings.AWS_ACCESS_KEY_ID,
            settings.AWS_SECRET_ACCESS_KEY,
            settings.SMS_SEND_TIMEOUT,
        )

    def send(self, phone: str, body: str) -> str:
        from botocore.exceptions import ClientError

        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        if settings.SMS_SENDER_ID:
            attributes["AWS.SNS.SMS.SenderID"] = {
                "DataType": "String",
                "StringValue": settings.SMS_SENDER_ID,
            }
        try:
            answer = self.client.publish(
                PhoneNumber=phone, Message=body, MessageAttributes=attributes
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in SNS_REFUSALS:
                raise SmsRefused(f"SNS refused the message: {code}: {error}") from error
            raise
        return answer.get("MessageId", "")


BACKENDS = {"console": ConsoleBackend, "locmem": LocmemBackend, "sns": SnsBackend}


def backend_class(name: str) -> type[BaseSmsBackend]:
    if name in BACKENDS:
        return BACKENDS[name]
    if "." in name:
        try:
            return import_string(name)
        except ImportError as error:
            raise ImproperlyConfigured(f"SMS_BACKEND {name!r} cannot be imported.") from error
    raise ImproperlyConfigured(
        f"SMS_BACKEND is {name!r}; use one of {', '.join(BACKENDS)}, or a dotted path."
    )


def get_backend() -> BaseSmsBackend:
    """The backend SMS_BACKEND names, ready to send."""
    return backend_class(settings.SMS_BACKEND)()
