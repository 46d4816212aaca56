"""`PATCH /api/v1/auth/me/`: a user edits their names and phone (SPEC §4)."""

import pytest
from django.db import connections

from accounts import services
from accounts.models import User
from accounts.tests.factories import UserFactory
from accounts.tests.helpers import bearer_client
from core.testing import assert_error, run_together

ME_URL = "/api/v1/auth/me/"
PHONE = "+14155550123"

pytestmark = pytest.mark.django_db


def patch(user, body):
    return bearer_client(user).patch(ME_URL, body, format="json")


def test_a_user_edits_their_names(user):
    response = patch(user, {"first_name": "Ada", "last_name": "Lovelace"})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": user.pk,
        "email": user.email,
        "phone": None,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "is_staff": False,
    }
    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")


def test_only_the_fields_sent_change(user):
    before = user.last_name

    patch(user, {"first_name": "Ada"})

    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Ada", before)


def test_a_phone_is_kept_in_e164_and_then_signs_the_user_in_by_sms(
    user, api_client, sms_outbox, sending
):
    response = patch(user, {"phone": "+1 (415) 555-0123"})

    assert response.status_code == 200, response.content
    assert response.json()["phone"] == PHONE
    with sending():
        api_client.post("/api/v1/auth/otp/start/", {"phone": PHONE}, format="json")
    code = sms_outbox[-1].body.split("code is ")[1][:6]
    verified = api_client.post(
        "/api/v1/auth/otp/verify/", {"phone": PHONE, "code": code}, format="json"
    )
    assert verified.status_code == 200, verified.content
    assert User.objects.count() == 1  # the same account, not a new one


def test_the_email_is_not_edited_here(user):
    email = user.email

    response = patch(user, {"email": "someone.else@example.com", "first_name": "Ada"})

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.email == email and user.first_name == "Ada"


def test_a_phone_another_user_has_is_refused(user):
    UserFactory(phone=PHONE)

    response = patch(user, {"phone": "+1 415 555 0123"})

    assert_error(response, 400, "unique", "phone")
    user.refresh_from_db()
    assert user.phone is None


def test_keeping_ones_own_phone_is_no_conflict(user):
    User.objects.filter(pk=user.pk).update(phone=PHONE)
    user.refresh_from_db()

    response = patch(user, {"phone": PHONE, "first_name": "Ada"})

    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        ("not a phone", "invalid"),
        ("4155550123", "invalid"),
        ("+19005550123", "phone_not_allowed"),  # premium rate
        ("+4930123456", "phone_not_allowed"),  # a fixed line takes no codes
    ],
)
def test_a_phone_that_cannot_take_codes_is_refused(user, phone, code):
    response = patch(user, {"phone": phone})

    assert_error(response, 400, code, "phone")


def test_a_phone_outside_the_allowed_countries_is_refused(user, settings):
    settings.SMS_ALLOWED_COUNTRIES = ["US"]

    assert_error(patch(user, {"phone": "+447400123456"}), 400, "phone_not_allowed", "phone")


def test_a_user_with_an_email_may_remove_their_phone(user):
    User.objects.filter(pk=user.pk).update(phone=PHONE)

    response = patch(user, {"phone": None})

    assert response.status_code == 200
    assert response.json()["phone"] is None
    assert User.objects.get(pk=user.pk).phone is None


def test_a_user_whose_only_way_in_is_their_phone_cannot_remove_it():
    user = UserFactory(email=None, phone=PHONE)

    response = patch(user, {"phone": None})

    assert_error(response, 400, "required", "phone")
    assert str(User.objects.get(pk=user.pk).phone) == PHONE


def test_a_phone_only_user_edits_their_names_and_still_has_no_email():
    user = UserFactory(email=None, phone=PHONE)

    response = patch(user, {"first_name": "Ada"})

    assert response.status_code == 200, response.content
    assert response.json()["email"] is None
    assert User.objects.get(pk=user.pk).email is None


def test_editing_the_profile_needs_credentials(api_client):
    response = api_client.patch(ME_URL, {"first_name": "Ada"}, format="json")

    assert_error(response, 401, "not_authenticated")


@pytest.mark.parametrize(
    ("body", "attr", "code"),
    [
        ({"first_name": "x" * 151}, "first_name", "max_length"),
        ({"first_name": None}, "first_name", "null"),
        ({"phone": 42.5}, "phone", "invalid"),
    ],
)
def test_malformed_fields_are_refused(user, body, attr, code):
    assert_error(patch(user, body), 400, code, attr)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_users_taking_one_phone_at_once_get_one_success_and_one_unique_error():
    users = [UserFactory(), UserFactory()]

    def take(i):
        user = User.objects.get(pk=users[i].pk)
        return services.user_update_profile(user=user, phone=PHONE)

    results = run_together(2, take)
    connections.close_all()

    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1, results
    assert refused[0].message_dict["phone"] == ["A user with this phone number already exists."]
    assert User.objects.filter(phone=PHONE).count() == 1
