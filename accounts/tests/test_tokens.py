"""JWT login, refresh, logout and /me (SPEC §4)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.services import user_tokens
from accounts.tests.factories import PASSWORD, UserFactory
from accounts.tests.helpers import bearer_client
from accounts.tokens import SessionRefreshToken
from core.testing import assert_error

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
LOGOUT_URL = "/api/v1/auth/logout/"
ME_URL = "/api/v1/auth/me/"

pytestmark = pytest.mark.django_db


def login(client, email, password=PASSWORD):
    return client.post(TOKEN_URL, {"email": email, "password": password}, format="json")


def client_with(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def only_error(response) -> dict:
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    return errors[0]


# --- Obtaining a pair -------------------------------------------------------------------


def test_login_answers_200_with_an_access_and_a_refresh_token(api_client, user):
    response = login(api_client, user.email)

    assert response.status_code == 200, response.content
    data = response.json()
    assert set(data) == {"access", "refresh"}
    assert AccessToken(data["access"])["user_id"] == str(user.pk)
    assert RefreshToken(data["refresh"])["user_id"] == str(user.pk)


def test_access_tokens_live_fifteen_minutes_and_refresh_tokens_seven_days(api_client, user):
    data = login(api_client, user.email).json()

    access, refresh = AccessToken(data["access"]), RefreshToken(data["refresh"])
    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh["exp"] - refresh["iat"] == 7 * 24 * 3600


def test_login_accepts_the_email_in_any_case(api_client):
    user = UserFactory(email="case.test@example.com")

    response = login(api_client, "Case.Test@EXAMPLE.com")

    assert response.status_code == 200, response.content
    assert AccessToken(response.json()["access"])["user_id"] == str(user.pk)


def test_login_refuses_a_wrong_password(api_client, user):
    response = login(api_client, user.email, "Not-The-Password-42")

    assert_error(response, 401, "authentication_failed")
    assert "access" not in response.json()
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_login_refuses_an_unknown_email(api_client):
    response = login(api_client, "nobody@example.com")

    assert_error(response, 401, "authentication_failed")


def test_login_refuses_an_inactive_user_with_the_right_password(api_client):
    user = UserFactory(is_active=False)

    response = login(api_client, user.email)

    assert_error(response, 401, "authentication_failed")


def test_login_refuses_a_user_without_a_usable_password(api_client):
    user = UserFactory()
    user.set_unusable_password()
    user.save()

    response = api_client.post(
        TOKEN_URL, {"email": user.email, "password": user.password}, format="json"
    )

    assert_error(response, 401, "authentication_failed")


@pytest.mark.parametrize("field", ["email", "password"])
def test_login_refuses_a_request_missing_a_field(api_client, user, field):
    data = {"email": user.email, "password": PASSWORD}
    del data[field]

    response = api_client.post(TOKEN_URL, data, format="json")

    assert_error(response, 400, "required", field)


def test_login_refuses_an_invalid_email(api_client):
    response = login(api_client, "not-an-email")

    assert_error(response, 400, "invalid", "email")


def test_login_works_without_the_trailing_slash(api_client, user):
    response = api_client.post(
        TOKEN_URL.rstrip("/"), {"email": user.email, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"access", "refresh"}


def test_login_ignores_a_stale_bearer_token(user):
    client = client_with("garbage.token.here")

    response = login(client, user.email)

    assert response.status_code == 200, response.content


# --- /me and access tokens ------------------------------------------------------------


def test_me_answers_the_user_of_the_bearer_access_token(api_client, user):
    access = login(api_client, user.email).json()["access"]

    response = client_with(access).get(ME_URL)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": user.pk,
        "email": user.email,
        "phone": None,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_staff": False,
    }


def test_me_shows_is_staff_for_a_staff_user(staff_user):
    response = bearer_client(staff_user).get(ME_URL)

    assert response.status_code == 200, response.content
    assert response.json()["is_staff"] is True


def test_me_works_without_the_trailing_slash(user):
    response = bearer_client(user).get(ME_URL.rstrip("/"))

    assert response.status_code == 200, response.content
    assert response.json()["email"] == user.email


def test_me_without_credentials_is_401_not_authenticated(api_client):
    response = api_client.get(ME_URL)

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_refresh_token_is_refused_as_an_access_token(api_client, user):
    refresh = login(api_client, user.email).json()["refresh"]

    response = client_with(refresh).get(ME_URL)

    assert_error(response, 401, "token_not_valid")
    assert only_error(response)["attr"] is None


def test_a_garbage_bearer_token_is_refused(api_client):
    response = client_with("this.is-not.a-jwt").get(ME_URL)

    assert_error(response, 401, "token_not_valid")
    only_error(response)


def test_a_token_signed_with_another_key_is_refused(user):
    token = AccessToken.for_user(user)
    forged = str(token).rsplit(".", 1)[0] + ".c2lnbmF0dXJlLWZyb20tc29tZXdoZXJlLWVsc2U"

    response = client_with(forged).get(ME_URL)

    assert_error(response, 401, "token_not_valid")


def test_an_expired_access_token_is_refused(user):
    token = AccessToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1), lifetime=timedelta(minutes=15))

    response = client_with(str(token)).get(ME_URL)

    assert_error(response, 401, "token_not_valid")
    only_error(response)


def test_an_access_token_still_in_its_lifetime_is_accepted(user):
    token = SessionRefreshToken.for_user(user).access_token
    token.set_exp(from_time=timezone.now() - timedelta(minutes=14), lifetime=timedelta(minutes=15))

    response = client_with(str(token)).get(ME_URL)

    assert response.status_code == 200, response.content


def test_the_access_token_of_a_deactivated_user_is_refused(user):
    client = bearer_client(user)
    user.is_active = False
    user.save()

    response = client.get(ME_URL)

    assert_error(response, 401, "user_inactive")
    only_error(response)


def test_the_access_token_of_a_deleted_user_is_refused(user):
    client = bearer_client(user)
    user.delete()

    response = client.get(ME_URL)

    assert_error(response, 401, "user_not_found")


# --- Refresh ----------------------------------------------------------------------------


def test_refresh_answers_a_new_access_and_a_rotated_refresh(api_client, user):
    old = login(api_client, user.email).json()

    response = api_client.post(REFRESH_URL, {"refresh": old["refresh"]}, format="json")

    assert response.status_code == 200, response.content
    new = response.json()
    assert set(new) == {"access", "refresh"}
    assert new["refresh"] != old["refresh"]
    assert AccessToken(new["access"])["user_id"] == str(user.pk)
    assert client_with(new["access"]).get(ME_URL).status_code == 200


def test_the_old_refresh_token_is_refused_after_rotation(api_client, user):
    old_refresh = login(api_client, user.email).json()["refresh"]
    api_client.post(REFRESH_URL, {"refresh": old_refresh}, format="json")

    response = api_client.post(REFRESH_URL, {"refresh": old_refresh}, format="json")

    assert_error(response, 401, "token_not_valid")
    only_error(response)


def test_the_rotated_refresh_token_refreshes_again(api_client, user):
    first = login(api_client, user.email).json()["refresh"]
    second = api_client.post(REFRESH_URL, {"refresh": first}, format="json").json()["refresh"]

    response = api_client.post(REFRESH_URL, {"refresh": second}, format="json")

    assert response.status_code == 200, response.content


def test_refresh_refuses_an_access_token(api_client, user):
    access = login(api_client, user.email).json()["access"]

    response = api_client.post(REFRESH_URL, {"refresh": access}, format="json")

    assert_error(response, 401, "token_not_valid")


def test_refresh_refuses_garbage(api_client):
    response = api_client.post(REFRESH_URL, {"refresh": "garbage"}, format="json")

    assert_error(response, 401, "token_not_valid")
    only_error(response)


def test_refresh_refuses_an_expired_refresh_token(api_client, user):
    token = RefreshToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(days=8), lifetime=timedelta(days=7))

    response = api_client.post(REFRESH_URL, {"refresh": str(token)}, format="json")

    assert_error(response, 401, "token_not_valid")


def test_refresh_refuses_the_token_of_a_deactivated_user(api_client, user):
    refresh = user_tokens(user=user)["refresh"]
    user.is_active = False
    user.save()

    response = api_client.post(REFRESH_URL, {"refresh": refresh}, format="json")

    assert_error(response, 401, "no_active_account")
    assert "access" not in response.json()


def test_refresh_needs_the_refresh_field(api_client):
    response = api_client.post(REFRESH_URL, {}, format="json")

    assert_error(response, 400, "required", "refresh")


def test_refresh_works_without_the_trailing_slash(api_client, user):
    refresh = user_tokens(user=user)["refresh"]

    response = api_client.post(REFRESH_URL.rstrip("/"), {"refresh": refresh}, format="json")

    assert response.status_code == 200, response.content


# --- Logout ------------------------------------------------------------------------------


def test_logout_answers_204_and_the_refresh_token_can_no_longer_refresh(api_client, user):
    tokens = login(api_client, user.email).json()
    client = client_with(tokens["access"])

    response = client.post(LOGOUT_URL, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 204, response.content
    assert not response.content
    refreshed = api_client.post(REFRESH_URL, {"refresh": tokens["refresh"]}, format="json")
    assert_error(refreshed, 401, "token_not_valid")


def test_logout_leaves_the_users_other_refresh_tokens_working(api_client, user):
    one = user_tokens(user=user)
    other = user_tokens(user=user)

    client_with(one["access"]).post(LOGOUT_URL, {"refresh": one["refresh"]}, format="json")

    response = api_client.post(REFRESH_URL, {"refresh": other["refresh"]}, format="json")
    assert response.status_code == 200, response.content


def test_logout_without_authentication_is_401(api_client, user):
    refresh = user_tokens(user=user)["refresh"]

    response = api_client.post(LOGOUT_URL, {"refresh": refresh}, format="json")

    assert_error(response, 401, "not_authenticated")
    still = api_client.post(REFRESH_URL, {"refresh": refresh}, format="json")
    assert still.status_code == 200, still.content


def test_logout_refuses_another_users_refresh_token_and_leaves_it_working(api_client, user):
    victim_refresh = user_tokens(user=UserFactory())["refresh"]

    response = bearer_client(user).post(LOGOUT_URL, {"refresh": victim_refresh}, format="json")

    assert_error(response, 400, "token_not_valid", "refresh")
    still = api_client.post(REFRESH_URL, {"refresh": victim_refresh}, format="json")
    assert still.status_code == 200, still.content


def test_logout_refuses_a_garbage_refresh_token(user):
    response = bearer_client(user).post(LOGOUT_URL, {"refresh": "garbage"}, format="json")

    assert_error(response, 401, "token_not_valid")
    only_error(response)


def test_logout_refuses_an_access_token_in_place_of_the_refresh_token(user):
    access = user_tokens(user=user)["access"]

    response = bearer_client(user).post(LOGOUT_URL, {"refresh": access}, format="json")

    assert_error(response, 401, "token_not_valid")


def test_logout_twice_with_the_same_refresh_token_is_refused_the_second_time(user):
    tokens = user_tokens(user=user)
    client = client_with(tokens["access"])
    client.post(LOGOUT_URL, {"refresh": tokens["refresh"]}, format="json")

    response = client.post(LOGOUT_URL, {"refresh": tokens["refresh"]}, format="json")

    assert_error(response, 401, "token_not_valid")


def test_logout_needs_the_refresh_field(user):
    response = bearer_client(user).post(LOGOUT_URL, {}, format="json")

    assert_error(response, 400, "required", "refresh")


def test_logout_works_without_the_trailing_slash(user):
    tokens = user_tokens(user=user)

    response = client_with(tokens["access"]).post(
        LOGOUT_URL.rstrip("/"), {"refresh": tokens["refresh"]}, format="json"
    )

    assert response.status_code == 204, response.content
