"""Users and API keys in the admin back office (SPEC §4, §8)."""

import re

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey, User
from accounts.services import api_key_create
from accounts.tests.factories import PASSWORD, UserFactory
from core.testing import messages_of

pytestmark = pytest.mark.django_db

USERS = "/admin/accounts/user/"
KEYS = "/admin/accounts/apikey/"
RAW_KEY = re.compile(r"The new API key is (\S+) ")


def me_with_key(raw):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    return client.get("/api/v1/auth/me/")


# --- Users ---------------------------------------------------------------------------


def test_the_user_changelist_lists_users(admin_client):
    UserFactory(email="listed.customer@example.com")

    response = admin_client.get(USERS)

    assert response.status_code == 200
    assert b"listed.customer@example.com" in response.content
    assert b"root@example.com" in response.content


def test_the_user_changelist_searches_by_email(admin_client):
    UserFactory(email="findme@example.com")
    UserFactory(email="hidden@example.com")

    response = admin_client.get(USERS, {"q": "findme"})

    assert response.status_code == 200
    assert b"findme@example.com" in response.content
    assert b"hidden@example.com" not in response.content


def test_the_user_change_form_opens(admin_client, user):
    response = admin_client.get(f"{USERS}{user.pk}/change/")

    assert response.status_code == 200
    assert user.email.encode() in response.content


def test_the_user_add_form_creates_a_user_with_that_email(admin_client):
    response = admin_client.post(
        f"{USERS}add/",
        {"email": "added@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 302, response.content
    user = User.objects.get(email="added@example.com")
    assert user.check_password(PASSWORD)
    assert not user.is_staff


def test_a_user_added_in_the_admin_can_log_in_over_the_api(admin_client):
    admin_client.post(
        f"{USERS}add/",
        {"email": "Added.Mixed@Example.COM", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert User.objects.filter(email="added.mixed@example.com").exists()
    response = APIClient().post(
        "/api/v1/auth/token/",
        {"email": "added.mixed@example.com", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 200, response.content


def test_the_user_add_form_refuses_a_taken_email_whatever_its_case(admin_client, user):
    response = admin_client.post(
        f"{USERS}add/",
        {"email": user.email.upper(), "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors["email"]
    assert User.objects.filter(email__iexact=user.email).count() == 1


def test_the_user_add_form_refuses_mismatched_passwords(admin_client):
    response = admin_client.post(
        f"{USERS}add/",
        {"email": "added@example.com", "password1": PASSWORD, "password2": PASSWORD + "x"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["password2"]
    assert not User.objects.filter(email="added@example.com").exists()


def test_the_user_add_form_applies_the_password_validators(admin_client):
    response = admin_client.post(
        f"{USERS}add/",
        {"email": "added@example.com", "password1": "password1234", "password2": "password1234"},
    )

    assert response.status_code == 200
    assert not User.objects.filter(email="added@example.com").exists()


# --- API keys ------------------------------------------------------------------------


def test_the_api_key_add_form_creates_a_key_and_shows_it_once(admin_client, user):
    response = admin_client.post(f"{KEYS}add/", {"user": user.pk, "name": "Web shop"}, follow=True)

    assert response.status_code == 200
    api_key = ApiKey.objects.get()
    assert (api_key.user, api_key.name) == (user, "Web shop")
    shown = [m for m in messages_of(response) if RAW_KEY.search(m)]
    assert len(shown) == 1
    raw = RAW_KEY.search(shown[0]).group(1)
    assert raw.startswith(api_key.prefix)
    assert raw.encode() in response.content

    # Never again: not on the list, nor on the key's own page.
    assert raw.encode() not in admin_client.get(KEYS).content
    assert raw.encode() not in admin_client.get(f"{KEYS}{api_key.pk}/change/").content


def test_the_key_shown_by_the_admin_authenticates_over_the_api(admin_client, user):
    response = admin_client.post(f"{KEYS}add/", {"user": user.pk, "name": "Web shop"}, follow=True)
    raw = next(RAW_KEY.search(m).group(1) for m in messages_of(response) if RAW_KEY.search(m))

    me = me_with_key(raw)

    assert me.status_code == 200, me.content
    assert me.json()["email"] == user.email


def test_the_api_key_add_form_needs_a_user_and_a_name(admin_client):
    response = admin_client.post(f"{KEYS}add/", {"name": ""})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "user" in errors
    assert "name" in errors
    assert not ApiKey.objects.exists()


def test_the_api_key_changelist_shows_the_prefix_not_the_key(admin_client, user):
    api_key, raw = api_key_create(user=user, name="Web shop")

    response = admin_client.get(KEYS)

    assert response.status_code == 200
    assert api_key.prefix.encode() in response.content
    assert raw.encode() not in response.content
    assert api_key.key_hash.encode() not in response.content


def test_an_api_key_cannot_be_edited_in_the_admin(admin_client, user):
    api_key, raw = api_key_create(user=user, name="Web shop")
    other = UserFactory()

    admin_client.post(f"{KEYS}{api_key.pk}/change/", {"user": other.pk, "name": "Renamed"})

    api_key.refresh_from_db()
    assert (api_key.user, api_key.name) == (user, "Web shop")
    assert me_with_key(raw).json()["id"] == user.pk


def test_the_revoke_action_revokes_the_selected_keys(admin_client, user):
    revoked, revoked_raw = api_key_create(user=user, name="Old shop")
    kept, kept_raw = api_key_create(user=user, name="New shop")

    response = admin_client.post(
        KEYS, {"action": "revoke", "_selected_action": [revoked.pk]}, follow=True
    )

    assert response.status_code == 200
    revoked.refresh_from_db()
    kept.refresh_from_db()
    assert revoked.revoked_at is not None
    assert kept.revoked_at is None
    assert "Revoked 1 API key(s)." in messages_of(response)
    assert me_with_key(revoked_raw).status_code == 401
    assert me_with_key(kept_raw).status_code == 200


def test_a_non_staff_user_is_sent_to_the_admin_login(client, user):
    client.force_login(user)

    for path in ("/admin/", USERS, KEYS, f"{KEYS}add/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/admin/login/"), path


def test_a_non_staff_user_cannot_create_a_key(client, user):
    client.force_login(user)

    response = client.post(f"{KEYS}add/", {"user": user.pk, "name": "Sneaky"})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert not ApiKey.objects.exists()
