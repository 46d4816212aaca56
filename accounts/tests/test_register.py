"""POST /api/v1/auth/register/ (SPEC §4)."""

import pytest

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from core.testing import assert_error

URL = "/api/v1/auth/register/"

pytestmark = pytest.mark.django_db


def body(**overrides):
    data = {
        "email": "new.customer@example.com",
        "password": PASSWORD,
        "first_name": "Ada",
        "last_name": "Lovelace",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not ...}


def test_register_answers_201_with_the_user_and_never_the_password(api_client):
    response = api_client.post(URL, body(), format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == {"id", "email", "phone", "first_name", "last_name", "is_staff"}
    user = User.objects.get()
    assert data == {
        "id": user.pk,
        "email": "new.customer@example.com",
        "phone": None,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "is_staff": False,
    }
    assert PASSWORD not in response.content.decode()


def test_register_needs_only_email_and_password(api_client):
    response = api_client.post(
        URL, {"email": "minimal@example.com", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["first_name"] == ""
    assert response.json()["last_name"] == ""


def test_register_stores_the_email_in_lower_case(api_client):
    response = api_client.post(URL, body(email="  Mixed.Case@Example.COM "), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["email"] == "mixed.case@example.com"
    assert User.objects.get().email == "mixed.case@example.com"


def test_register_stores_the_password_hashed(api_client):
    api_client.post(URL, body(), format="json")

    user = User.objects.get()
    assert user.password != PASSWORD
    assert PASSWORD not in user.password
    assert user.has_usable_password()
    assert user.check_password(PASSWORD)


def test_a_registered_user_can_log_in_with_the_password(api_client):
    api_client.post(URL, body(), format="json")

    response = api_client.post(
        "/api/v1/auth/token/",
        {"email": "new.customer@example.com", "password": PASSWORD},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"access", "refresh"}


@pytest.mark.parametrize("field", ["email", "password"])
def test_register_refuses_a_request_missing_a_required_field(api_client, field):
    response = api_client.post(URL, body(**{field: ...}), format="json")

    assert_error(response, 400, "required", field)
    assert not User.objects.exists()


@pytest.mark.parametrize("field", ["email", "password"])
def test_register_refuses_a_null_required_field(api_client, field):
    response = api_client.post(URL, body(**{field: None}), format="json")

    assert_error(response, 400, "null", field)
    assert not User.objects.exists()


def test_register_refuses_an_empty_body_naming_every_required_field(api_client):
    response = api_client.post(URL, {}, format="json")

    body_ = assert_error(response, 400, "required", "email")
    assert_error(response, 400, "required", "password")
    assert {e["attr"] for e in body_["errors"]} == {"email", "password"}
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", 12345),
        ("email", ["someone@example.com"]),
        ("email", {"address": "someone@example.com"}),
        ("password", {"secret": PASSWORD}),
        ("password", [PASSWORD]),
        ("first_name", ["Ada"]),
        ("last_name", {"name": "Lovelace"}),
    ],
)
def test_register_refuses_a_field_of_the_wrong_type(api_client, field, value):
    response = api_client.post(URL, body(**{field: value}), format="json")

    assert_error(response, 400, "invalid", field)
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "a" * 243 + "@example.com"),  # 255 characters
        ("first_name", "A" * 151),
        ("last_name", "L" * 151),
        ("password", "Aa1!" * 32 + "x"),  # 129 characters
    ],
)
def test_register_refuses_a_string_over_its_maximum_length(api_client, field, value):
    response = api_client.post(URL, body(**{field: value}), format="json")

    assert_error(response, 400, "max_length", field)
    assert not User.objects.exists()


def test_register_accepts_strings_at_their_maximum_length(api_client):
    email = "a" * 242 + "@example.com"  # 254 characters
    response = api_client.post(
        URL,
        body(email=email, first_name="A" * 150, last_name="L" * 150, password="Aa1!" * 32),
        format="json",
    )

    assert response.status_code == 201, response.content
    assert User.objects.get().email == email


@pytest.mark.parametrize(
    "email", ["not-an-email", "someone@", "@example.com", "some one@example.com", ""]
)
def test_register_refuses_an_invalid_email(api_client, email):
    response = api_client.post(URL, body(email=email), format="json")

    assert_error(response, 400, "blank" if email == "" else "invalid", "email")
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("Ab1!xyz", "password_too_short"),
        ("password1234", "password_too_common"),
        ("83920174651", "password_entirely_numeric"),
        ("jonathan.whitaker", "password_too_similar"),
    ],
)
def test_register_refuses_a_weak_password_naming_the_validator(api_client, password, code):
    response = api_client.post(
        URL, body(email="jonathan.whitaker@example.com", password=password), format="json"
    )

    assert_error(response, 400, code, "password")
    assert not User.objects.exists()


def test_register_reports_every_password_validator_that_fails(api_client):
    response = api_client.post(URL, body(password="1234"), format="json")

    data = assert_error(response, 400, "password_too_short", "password")
    codes = {e["code"] for e in data["errors"] if e["attr"] == "password"}
    assert {"password_too_short", "password_too_common", "password_entirely_numeric"} <= codes
    assert not User.objects.exists()


def test_register_refuses_a_blank_password(api_client):
    response = api_client.post(URL, body(password=""), format="json")

    assert_error(response, 400, "blank", "password")
    assert not User.objects.exists()


def test_register_refuses_a_taken_email(api_client):
    UserFactory(email="new.customer@example.com")

    response = api_client.post(URL, body(), format="json")

    assert_error(response, 400, "unique", "email")
    assert User.objects.count() == 1


def test_register_refuses_a_taken_email_whatever_its_case(api_client):
    UserFactory(email="new.customer@example.com")

    response = api_client.post(URL, body(email="New.Customer@EXAMPLE.com"), format="json")

    assert_error(response, 400, "unique", "email")
    assert User.objects.count() == 1


def test_register_ignores_server_owned_fields_sent_in_the_body(api_client):
    response = api_client.post(
        URL,
        body(is_staff=True, is_superuser=True, is_active=False, id=999_999),
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["is_staff"] is False
    user = User.objects.get()
    assert user.pk != 999_999
    assert not user.is_staff
    assert not user.is_superuser
    assert user.is_active


def test_register_refuses_a_body_that_is_not_json(api_client):
    response = api_client.post(URL, "email=a@example.com", content_type="text/plain")

    assert_error(response, 415, "unsupported_media_type")
    assert not User.objects.exists()


def test_register_refuses_malformed_json(api_client):
    response = api_client.post(URL, '{"email": ', content_type="application/json")

    assert_error(response, 400, "parse_error", error_type="client_error")
    assert not User.objects.exists()


def test_register_works_without_the_trailing_slash(api_client):
    response = api_client.post(URL.rstrip("/"), body(), format="json")

    assert response.status_code == 201, response.content
    assert User.objects.filter(email="new.customer@example.com").exists()


def test_register_ignores_a_stale_bearer_token(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = api_client.post(URL, body(), format="json")

    assert response.status_code == 201, response.content


# --- One account per mailbox -------------------------------------------------------------


def test_a_domain_in_unicode_and_in_punycode_is_one_account(api_client):
    first = api_client.post(
        URL, {"email": "ann@b\u00fccher.de", "password": PASSWORD}, format="json"
    )
    assert first.status_code == 201, first.content
    assert first.json()["email"] == "ann@xn--bcher-kva.de"

    second = api_client.post(
        URL, {"email": "ANN@xn--bcher-kva.de", "password": PASSWORD}, format="json"
    )

    assert_error(second, 400, "unique", "email")
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "address", ["shopper@ex\u0430mple.com", "shopper@xn--exmple-4nf.com"], ids=["unicode", "idna"]
)
def test_a_domain_mixing_alphabets_is_refused(api_client, address):
    UserFactory(email="shopper@example.com")

    response = api_client.post(URL, {"email": address, "password": PASSWORD}, format="json")

    assert_error(response, 400, "invalid", "email")
    assert User.objects.count() == 1
