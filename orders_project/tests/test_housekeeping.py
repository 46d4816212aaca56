"""Daily housekeeping: what has expired goes, nothing else does."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import tasks as account_tasks
from accounts.models import OneTimeCode
from accounts.services import user_tokens
from accounts.tests.factories import UserFactory
from core import db
from orders import tasks as order_tasks
from orders.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def idempotency_record(user, key, age):
    record = IdempotencyRecord.objects.create(
        user=user, key=key, fingerprint="f" * 64, response_status=201, response_body={}
    )
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - age)
    return record


def test_housekeeping_drops_only_what_has_expired(settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    user = UserFactory()
    now = timezone.now()
    idempotency_record(user, "old", timedelta(hours=25))
    kept_record = idempotency_record(user, "new", timedelta(hours=23))
    OneTimeCode.objects.create(email="a@example.com", code_hash="x", expires_at=now - timedelta(1))
    kept_code = OneTimeCode.objects.create(
        email="b@example.com", code_hash="y", expires_at=now + timedelta(minutes=5)
    )
    user_tokens(user=user)
    user_tokens(user=user)
    expired, kept_token = OutstandingToken.objects.order_by("pk")
    OutstandingToken.objects.filter(pk=expired.pk).update(expires_at=now - timedelta(1))
    BlacklistedToken.objects.create(token=expired)
    BlacklistedToken.objects.create(token=kept_token)

    assert order_tasks.housekeeping.apply().get() == {"idempotency_records": 1}
    assert account_tasks.housekeeping.apply().get() == {
        "one_time_codes": 1,
        "expired_tokens": 1,
        "sms_messages": 0,
    }
    assert list(IdempotencyRecord.objects.all()) == [kept_record]
    assert list(OneTimeCode.objects.all()) == [kept_code]
    assert list(OutstandingToken.objects.all()) == [kept_token]
    assert list(BlacklistedToken.objects.values_list("token_id", flat=True)) == [kept_token.pk]
    # A second run finds nothing more.
    for task in (order_tasks.housekeeping, account_tasks.housekeeping):
        assert set(task.apply().get().values()) == {0}


def test_large_clean_ups_go_in_batches(django_assert_num_queries):
    user = UserFactory()
    for i in range(5):
        idempotency_record(user, f"k{i}", timedelta(days=3))
    stale = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - timedelta(days=1))
    # Three batches of two (select ids, delete) and a last empty select.
    with django_assert_num_queries(3 * 2 + 1):
        assert db.delete_in_batches(stale, batch_size=2) == 5
    assert not IdempotencyRecord.objects.exists()
