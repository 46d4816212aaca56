"""Standard Webhooks signatures (https://www.standardwebhooks.com/): what a
receiver checks to know a delivery came from us, unchanged.

`webhook-signature` is `v1,<base64 of HMAC-SHA256("{id}.{timestamp}.{body}")>`
keyed with the secret's bytes (the base64 after "whsec_"); while a rotated
secret is still valid, both signatures are sent, separated by a space.
"""

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(*, secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(
        sign(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets_
    )
