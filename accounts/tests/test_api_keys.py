"""API keys for integrations: `X-API-Key: <key>` acts as the key's user (SPEC §3, §4)."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiKey
from accounts.tests.factories import StaffFactory, UserFactory
from core.testing import assert_error

ME_URL = "/api/v1/auth/me/"

pytestmark = pytest.mark.django_db


def key_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    return client


def test_api_key_create_returns_the_stored_key_and_the_raw_key(user):
    api_key, raw = services.api_key_create(user=user, name="Web shop")

    assert isinstance(api_key, ApiKey)
    assert api_key.pk is not None
    assert api_key.user == user
    assert api_key.name == "Web shop"
    assert api_key.is_active
    assert isinstance(raw, str)
    assert len(raw) >= 40


def test_only_a_sha256_hash_and_a_prefix_of_the_key_are_stored(user):
    api_key, raw = services.api_key_create(user=user, name="Web shop")

    row = ApiKey.objects.values().get(pk=api_key.pk)
    assert row["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(row["prefix"])
    assert len(row["prefix"]) < len(raw) // 4
    assert all(raw not in str(value) for value in row.values()), row


def test_every_key_is_different(user):
    raws = {services.api_key_create(user=user, name=f"key {n}")[1] for n in range(5)}

    assert len(raws) == 5


def test_an_api_key_authenticates_as_its_user(user):
    _, raw = services.api_key_create(user=user, name="Web shop")

    response = key_client(raw).get(ME_URL)

    assert response.status_code == 200, response.content
    assert response.json()["id"] == user.pk
    assert response.json()["email"] == user.email
    assert response.json()["is_staff"] is False


def test_a_staff_users_api_key_acts_as_staff():
    staff = StaffFactory()
    _, raw = services.api_key_create(user=staff, name="Back office")

    response = key_client(raw).get(ME_URL)

    assert response.status_code == 200, response.content
    assert response.json()["is_staff"] is True


def test_an_api_key_is_accepted_with_surrounding_whitespace(user):
    _, raw = services.api_key_create(user=user, name="Web shop")

    response = key_client(f"  {raw} ").get(ME_URL)

    assert response.status_code == 200, response.content


@pytest.mark.parametrize("bad", ["not-a-key", "", "x" * 500])
def test_an_unknown_api_key_is_refused(user, bad):
    services.api_key_create(user=user, name="Web shop")

    response = key_client(bad).get(ME_URL)

    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"]


def test_a_key_differing_in_one_character_is_refused(user):
    _, raw = services.api_key_create(user=user, name="Web shop")
    tampered = raw[:-1] + ("A" if raw[-1] != "A" else "B")

    response = key_client(tampered).get(ME_URL)

    assert_error(response, 401, "authentication_failed")


def test_the_stored_hash_is_not_a_key(user):
    api_key, _ = services.api_key_create(user=user, name="Web shop")

    response = key_client(api_key.key_hash).get(ME_URL)

    assert_error(response, 401, "authentication_failed")


def test_a_revoked_key_is_refused(user):
    api_key, raw = services.api_key_create(user=user, name="Web shop")
    assert key_client(raw).get(ME_URL).status_code == 200

    services.api_key_revoke(api_key=api_key)

    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
    assert_error(key_client(raw).get(ME_URL), 401, "authentication_failed")


def test_revoking_a_key_twice_keeps_the_first_revocation_time(user):
    api_key, _ = services.api_key_create(user=user, name="Web shop")
    services.api_key_revoke(api_key=api_key)
    first = ApiKey.objects.get(pk=api_key.pk).revoked_at

    services.api_key_revoke(api_key=ApiKey.objects.get(pk=api_key.pk))

    assert ApiKey.objects.get(pk=api_key.pk).revoked_at == first


def test_revoking_one_key_leaves_the_users_other_keys_working(user):
    revoked, _ = services.api_key_create(user=user, name="Old shop")
    _, raw = services.api_key_create(user=user, name="New shop")

    services.api_key_revoke(api_key=revoked)

    assert key_client(raw).get(ME_URL).status_code == 200


def test_the_key_of_a_deactivated_user_is_refused(user):
    _, raw = services.api_key_create(user=user, name="Web shop")
    user.is_active = False
    user.save()

    response = key_client(raw).get(ME_URL)

    assert_error(response, 401, "authentication_failed")


def test_an_api_key_stamps_last_used_at(user):
    api_key, raw = services.api_key_create(user=user, name="Web shop")
    assert api_key.last_used_at is None
    before = timezone.now()

    key_client(raw).get(ME_URL)

    last_used = ApiKey.objects.get(pk=api_key.pk).last_used_at
    assert last_used is not None
    assert before <= last_used <= timezone.now()


def test_last_used_at_is_refreshed_once_it_is_older_than_five_minutes(user):
    api_key, raw = services.api_key_create(user=user, name="Web shop")
    stale = timezone.now() - timedelta(minutes=6)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=stale)

    key_client(raw).get(ME_URL)

    assert ApiKey.objects.get(pk=api_key.pk).last_used_at > stale + timedelta(minutes=5)


def test_a_refused_key_does_not_stamp_last_used_at(user):
    api_key, raw = services.api_key_create(user=user, name="Web shop")
    services.api_key_revoke(api_key=api_key)

    key_client(raw).get(ME_URL)

    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is None


def test_api_key_authenticate_returns_the_key_with_its_user_or_none(user):
    api_key, raw = services.api_key_create(user=user, name="Web shop")

    found = services.api_key_authenticate(raw=raw)

    assert found == api_key
    assert found.user == user
    assert services.api_key_authenticate(raw="nope") is None
    assert services.api_key_authenticate(raw="") is None


def test_a_request_with_both_a_bearer_token_and_an_api_key_uses_the_bearer_token(user):
    other = UserFactory()
    _, raw = services.api_key_create(user=other, name="Web shop")
    client = key_client(raw)
    client.credentials(
        HTTP_X_API_KEY=raw,
        HTTP_AUTHORIZATION=f"Bearer {services.user_tokens(user=user)['access']}",
    )

    response = client.get(ME_URL)

    assert response.status_code == 200, response.content
    assert response.json()["id"] == user.pk
