"""Sessions end (SPEC §4): a password change, a deactivation or "log out
everywhere" refuses every token and API key of the user at once; a session
lasts at most JWT_SESSION_MAX_DAYS however often it is refreshed; a refresh
token is redeemed once, even by concurrent requests."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import services
from accounts.models import ApiKey, User
from accounts.tests.factories import PASSWORD, StaffFactory, UserFactory
from accounts.tokens import SESSION_STARTED_CLAIM, SessionRefreshToken
from core.testing import assert_error, run_together

pytestmark = pytest.mark.django_db

ME = "/api/v1/auth/me/"
REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT_ALL = "/api/v1/auth/logout-all/"


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def with_key(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    return client


def refresh(raw: str):
    return APIClient().post(REFRESH, {"refresh": raw}, format="json")


@pytest.fixture
def session(user):
    """A user's login (a pair) and one of their API keys, all working."""
    pair = services.user_tokens(user=user)
    _, key = services.api_key_create(user=user, name="shop")
    assert bearer(pair["access"]).get(ME).status_code == 200
    assert with_key(key).get(ME).status_code == 200
    return pair, key


def assert_ended(pair, key):
    assert_error(bearer(pair["access"]).get(ME), 401, "token_not_valid")
    assert_error(refresh(pair["refresh"]), 401, "token_not_valid")
    assert_error(with_key(key).get(ME), 401, "authentication_failed")


def test_a_password_change_ends_every_session_and_key_at_once(user, session):
    user.set_password("a-brand-new-Passphrase-4")
    user.save()

    assert_ended(*session)
    # A new login works at once.
    fresh = services.user_tokens(user=User.objects.get(pk=user.pk))
    assert bearer(fresh["access"]).get(ME).status_code == 200


def test_log_out_everywhere_ends_every_session_and_key(user, session):
    pair, key = session
    other_login = services.user_tokens(user=user)

    response = bearer(pair["access"]).post(LOGOUT_ALL)

    assert response.status_code == 204, response.content
    assert_ended(pair, key)
    assert_error(bearer(other_login["access"]).get(ME), 401, "token_not_valid")
    assert ApiKey.objects.get().revoked_at is not None
    fresh = User.objects.get(pk=user.pk)  # a new login loads the user afresh
    assert bearer(services.user_tokens(user=fresh)["access"]).get(ME).status_code == 200


def test_log_out_everywhere_needs_to_be_logged_in(api_client):
    assert_error(api_client.post(LOGOUT_ALL), 401, "not_authenticated")


def test_a_deactivation_in_the_admin_ends_sessions_for_good(client, user, session):
    client.force_login(StaffFactory(is_superuser=True))
    change = reverse("admin:accounts_user_change", args=[user.pk])
    form = client.get(change).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update(is_active="", email=user.email, date_joined_0="2026-01-01", date_joined_1="00:00")
    data.pop("password", None)
    data["groups"], data["user_permissions"] = [], []
    data.pop("last_login", None)
    response = client.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    # Reactivated later, the old sessions and keys stay dead.
    User.objects.filter(pk=user.pk).update(is_active=True)

    assert_ended(*session)


def test_a_session_ends_after_its_maximum_length_however_often_refreshed(user, settings):
    settings.JWT_SESSION_MAX_DAYS = 30
    first = SessionRefreshToken.for_user(user)
    # The login happened 29 days and 23 hours ago: one more refresh is allowed,
    # and it lives only until the session's end.
    started = int(first[SESSION_STARTED_CLAIM]) - int(timedelta(days=29, hours=23).total_seconds())
    late = SessionRefreshToken.for_user(user, session_started=started)
    renewed = refresh(str(late))
    assert renewed.status_code == 200, renewed.content
    new = SessionRefreshToken(renewed.json()["refresh"])
    assert new[SESSION_STARTED_CLAIM] == started
    assert new["exp"] <= started + 30 * 86400

    expired = SessionRefreshToken.for_user(user, session_started=started - 3600)
    assert_error(refresh(str(expired)), 401, "token_not_valid")


def test_the_refresh_token_of_a_deleted_user_is_a_401(user):
    raw = services.user_tokens(user=user)["refresh"]
    user.delete()

    assert_error(refresh(raw), 401, "user_not_found")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_refresh_token_used_six_times_at_once_gives_one_new_pair():
    user = UserFactory()
    raw = services.user_tokens(user=user)["refresh"]

    answers = run_together(6, lambda i: refresh(raw))

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200, 401, 401, 401, 401, 401], codes
    winner = next(answer for answer in answers if answer.status_code == 200).json()
    assert refresh(winner["refresh"]).status_code == 200
    # The old token is blacklisted once; one new token (then its successor) exists.
    assert BlacklistedToken.objects.filter(token__token=raw).count() == 1
    assert OutstandingToken.objects.filter(user=user).count() == 3


# --- API keys never hold more power than the member who made them -------------------


def test_only_a_superuser_makes_a_key_for_someone_else():
    root = StaffFactory(is_superuser=True)
    member = StaffFactory(perms=["accounts.add_apikey", "accounts.view_apikey"])

    with pytest.raises(services.PermissionRefused):
        services.api_key_create(user=root, name="takeover", created_by=member)
    _, own = services.api_key_create(user=member, name="mine", created_by=member)
    key, _ = services.api_key_create(user=member, name="for them", created_by=root)

    assert ApiKey.objects.count() == 2
    assert key.created_by == root
    assert with_key(own).get(ME).json()["email"] == member.email


def test_the_admin_offers_a_member_only_themself_as_the_key_s_user(client):
    root = StaffFactory(is_superuser=True)
    member = StaffFactory(perms=["accounts.add_apikey", "accounts.view_apikey"])
    client.force_login(member)
    add = reverse("admin:accounts_apikey_add")

    choices = client.get(add).context["adminform"].form.fields["user"].queryset
    forged = client.post(add, {"user": root.pk, "name": "takeover"})

    assert list(choices) == [member]
    assert forged.status_code == 200  # the form again: not a valid choice
    assert not ApiKey.objects.filter(user=root).exists()
    assert client.post(add, {"user": member.pk, "name": "mine"}).status_code == 302
    assert ApiKey.objects.get().user == member


def test_a_member_who_may_change_users_cannot_grant_power_or_touch_a_superuser(client):
    root = StaffFactory(is_superuser=True, email="root@example.com")
    member = StaffFactory(perms=["accounts.view_user", "accounts.change_user"])
    client.force_login(member)

    own_page = client.get(reverse("admin:accounts_user_change", args=[member.pk]))
    root_page = client.post(
        reverse("admin:auth_user_password_change", args=[root.pk]),
        {"password1": "Another-Passphrase-77", "password2": "Another-Passphrase-77"},
    )

    readonly = own_page.context["adminform"].readonly_fields
    assert {"is_superuser", "is_staff", "groups", "user_permissions"} <= set(readonly)
    assert root_page.status_code == 403
    root.refresh_from_db()
    assert root.check_password(PASSWORD)
    assert not member.user_permissions.filter(
        pk__in=Permission.objects.exclude(codename__in=["view_user", "change_user"])
    ).exists()


def test_the_new_key_is_shown_in_a_message_kept_on_the_server_not_in_a_cookie(client):
    client.force_login(StaffFactory(is_superuser=True))
    response = client.post(
        reverse("admin:accounts_apikey_add"),
        {"user": User.objects.get().pk, "name": "shop"},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("The new API key is" in m for m in messages), messages
    assert "messages" not in response.cookies
    assert all("messages" not in str(cookie) for cookie in client.cookies.values())
