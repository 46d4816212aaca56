"""`Idempotency-Key` on order creation: a retried request gets the first
response again instead of making a second order.

The record is inserted before the order is placed, in the same transaction.
A concurrent duplicate's insert waits on the unique (user, key) index until
the first transaction ends: if it committed, the duplicate replays its
response; if it rolled back (the order was refused), the duplicate goes ahead
as if it were first. Refused requests are not remembered, so a client may
retry them once the cause is fixed (stock restocked, say).

The view hands the header and the request to `run_once`; everything about
keys — their form, the replay, the reuse with another body — is here.
"""

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.db import delete_in_batches

from .exceptions import IdempotencyKeyReused, InvalidIdempotencyKey
from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Printable ASCII without spaces, as Stripe and the IETF draft use.
KEY_FORM = re.compile(r"[\x21-\x7e]{1,255}")


class Outcome(NamedTuple):
    status: int
    body: object
    replayed: bool  # the first response to this key, answered again


def idempotency_key_check(key: str | None) -> str | None:
    """The key as sent, None without one; a malformed key is refused (400)."""
    if key is not None and not KEY_FORM.fullmatch(key):
        raise InvalidIdempotencyKey()
    return key


def run_once(*, user, key: str | None, data, produce: Callable[[], tuple[int, object]]) -> Outcome:
    """`produce()` -> (status, body), once per (user, key) within the TTL.

    Without a key it simply runs. With one, a retry with the same request
    body gets the first outcome again (`replayed`), and another body is
    refused (422 `idempotency_key_reused`)."""
    key = idempotency_key_check(key)
    if key is None:
        return Outcome(*produce(), False)
    return Outcome(
        *idempotent(user=user, key=key, fingerprint=request_fingerprint(data), produce=produce)
    )


def request_fingerprint(data) -> str:
    """A digest of the request body that ignores key order and whitespace."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_ttl() -> timedelta:
    return timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


@transaction.atomic
def idempotent(
    *, user, key: str, fingerprint: str, produce: Callable[[], tuple[int, object]]
) -> tuple[int, object, bool]:
    """Run `produce()` once per (user, key) and remember its (status, body).

    Returns (status, body, replayed). The same key with another fingerprint
    within the TTL raises `IdempotencyKeyReused` (422)."""
    record_id = _claim(user=user, key=key, fingerprint=fingerprint)
    if record_id is None:
        record = IdempotencyRecord.objects.select_for_update().get(user=user, key=key)
        if record.created_at >= timezone.now() - idempotency_ttl():
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReused()
            return record.response_status, record.response_body, True
        # Expired: the key is free again.
        record.fingerprint, record.created_at = fingerprint, timezone.now()
        record.save(update_fields=["fingerprint", "created_at"])
        record_id = record.pk
    status, body = produce()
    IdempotencyRecord.objects.filter(pk=record_id).update(
        response_status=status, response_body=body
    )
    return status, body, False


def _claim(*, user, key: str, fingerprint: str) -> int | None:
    """Insert the record for (user, key) and return its id, or None if the key
    is taken. One statement, no savepoint: ON CONFLICT DO NOTHING waits, like
    a plain insert would, for a concurrent request with the same key to end,
    and then does nothing if that one committed."""
    table = IdempotencyRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} "  # noqa: S608 (the table name is ours)
            "(user_id, key, fingerprint, response_status, response_body, created_at) "
            "VALUES (%s, %s, %s, 0, %s, %s) "
            "ON CONFLICT (user_id, key) DO NOTHING RETURNING id",
            [user.pk, key, fingerprint, "{}", timezone.now()],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def idempotency_delete_expired() -> int:
    """Drop records past the TTL (daily housekeeping)."""
    cutoff = timezone.now() - idempotency_ttl()
    return delete_in_batches(IdempotencyRecord.objects.filter(created_at__lt=cutoff))
