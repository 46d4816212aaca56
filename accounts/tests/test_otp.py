"""Passwordless login with a one-time code mailed to the user (SPEC §4)."""

import re
import smtplib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services
from accounts.models import OneTimeCode, User
from accounts.tests.factories import StaffFactory, UserFactory
from accounts.throttles import OtpRecipientThrottle
from core.testing import assert_error, run_together
from core.throttling import ClientScopedThrottle

START_URL = "/api/v1/auth/otp/start/"
VERIFY_URL = "/api/v1/auth/otp/verify/"
EMAIL = "passwordless@example.com"

pytestmark = pytest.mark.django_db


def start(client, email=EMAIL):
    return client.post(START_URL, {"email": email}, format="json")


def verify(client, code, email=EMAIL):
    return client.post(VERIFY_URL, {"email": email, "code": code}, format="json")


def mailed_code(message) -> str:
    match = re.search(r"\b(\d{6})\b", message.body)
    assert match, message.body
    return match.group(1)


def start_and_read_code(client, mailoutbox, email=EMAIL) -> str:
    response = start(client, email)
    assert response.status_code == 200, response.content
    return mailed_code(mailoutbox[-1])


def wrong(code: str) -> str:
    """A well-formed code that is certainly not `code`."""
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.fixture
def fixed_codes(monkeypatch):
    """Make the codes drawn by otp_start the given numbers, in order."""

    def use(*numbers):
        draws = iter(numbers)
        monkeypatch.setattr(services.secrets, "randbelow", lambda _n: next(draws))

    return use


# --- Start -------------------------------------------------------------------------------


def test_start_answers_200_with_expires_in_and_mails_one_code(api_client, mailoutbox):
    response = start(api_client)

    assert response.status_code == 200, response.content
    assert response.json()["expires_in"] == 300
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == [EMAIL]
    code = mailed_code(message)
    assert re.fullmatch(r"\d{6}", code)
    assert code in message.subject


def test_start_mails_the_normalized_address(api_client, mailoutbox):
    start(api_client, "  PasswordLess@Example.COM ")

    assert mailoutbox[0].to == [EMAIL]
    assert OneTimeCode.objects.get().email == EMAIL


def test_start_does_not_echo_the_code_without_debug(api_client, mailoutbox, settings):
    settings.DEBUG = False

    response = start(api_client)

    assert response.status_code == 200, response.content
    assert "dev_code" not in response.json()
    assert mailed_code(mailoutbox[0]) not in response.content.decode()


def test_start_echoes_the_mailed_code_as_dev_code_in_debug(api_client, mailoutbox, settings):
    settings.DEBUG = True

    response = start(api_client)

    assert response.status_code == 200, response.content
    assert response.json()["dev_code"] == mailed_code(mailoutbox[0])


def test_start_stores_the_code_hashed_never_in_clear(api_client, mailoutbox, fixed_codes):
    fixed_codes(480913)  # fixed, so that no random hash can contain it by chance
    code = start_and_read_code(api_client, mailoutbox)
    assert code == "480913"

    row = OneTimeCode.objects.values().get()
    assert all(code not in str(value) for value in row.values()), row
    assert len(row["code_hash"]) == 64


def test_start_makes_the_code_expire_after_the_configured_lifetime(api_client, mailoutbox):
    before = timezone.now()
    start(api_client)

    otp = OneTimeCode.objects.get()
    assert (
        before + timedelta(seconds=299) <= otp.expires_at <= timezone.now() + timedelta(seconds=300)
    )


@pytest.mark.parametrize("email", ["not-an-email", "", None, 42])
def test_start_refuses_an_invalid_email(api_client, mailoutbox, email):
    response = api_client.post(START_URL, {"email": email}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "email"
    assert not OneTimeCode.objects.exists()
    assert not mailoutbox


def test_start_refuses_a_request_without_an_email(api_client, mailoutbox):
    response = api_client.post(START_URL, {}, format="json")

    assert_error(response, 400, "required", "email")
    assert not mailoutbox


def test_start_creates_no_user(api_client, mailoutbox):
    start(api_client)

    assert not User.objects.exists()


def test_start_answers_503_when_the_mail_cannot_be_sent(api_client, monkeypatch):
    def refuse(**_kwargs):
        raise smtplib.SMTPServerDisconnected("mail server went away")

    monkeypatch.setattr(services, "send_mail", refuse)
    api_client.raise_request_exception = False  # a 5xx is reported, as in production

    response = start(api_client)

    assert_error(response, 503, "service_unavailable")
    assert "dev_code" not in response.json()


@pytest.fixture
def no_rate_limits(monkeypatch):
    """The request throttles out of the way, to reach the caps kept in the
    database (they have their own tests in test_throttling.py)."""
    rates = {"otp_start": "1000/min", "otp_recipient": "1000/min", "otp_verify": "1000/min"}
    monkeypatch.setattr(ClientScopedThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(OtpRecipientThrottle, "THROTTLE_RATES", rates)


@pytest.mark.usefixtures("no_rate_limits")
def test_more_than_ten_starts_an_hour_for_one_address_are_throttled(api_client, mailoutbox):
    for _ in range(10):
        assert start(api_client).status_code == 200

    response = start(api_client, EMAIL.upper())

    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert len(mailoutbox) == 10
    assert OneTimeCode.objects.count() == 10


@pytest.mark.usefixtures("no_rate_limits")
def test_the_hourly_start_limit_is_per_address(api_client, mailoutbox):
    for _ in range(10):
        start(api_client)

    response = start(api_client, "someone.else@example.com")

    assert response.status_code == 200, response.content


@pytest.mark.usefixtures("no_rate_limits")
def test_codes_older_than_an_hour_do_not_count_against_the_start_limit(api_client, mailoutbox):
    for _ in range(10):
        start(api_client)
    OneTimeCode.objects.update(created_at=timezone.now() - timedelta(hours=1, minutes=1))

    response = start(api_client)

    assert response.status_code == 200, response.content


# --- Verify ------------------------------------------------------------------------------


def test_verify_with_the_right_code_answers_a_token_pair(api_client, mailoutbox):
    code = start_and_read_code(api_client, mailoutbox)

    response = verify(api_client, code)

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"access", "refresh"}
    me = api_client.get(
        "/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}"
    )
    assert me.status_code == 200, me.content
    assert me.json()["email"] == EMAIL


def test_verify_creates_the_customer_on_first_login(api_client, mailoutbox):
    code = start_and_read_code(api_client, mailoutbox)

    response = verify(api_client, code)

    user = User.objects.get()
    assert user.email == EMAIL
    assert not user.is_staff
    assert not user.is_superuser
    assert user.is_active
    assert not user.has_usable_password()
    assert AccessToken(response.json()["access"])["user_id"] == str(user.pk)


def test_verify_logs_in_an_existing_user_without_creating_another(api_client, mailoutbox):
    existing = UserFactory(email=EMAIL)

    code = start_and_read_code(api_client, mailoutbox)
    response = verify(api_client, code)

    assert response.status_code == 200, response.content
    assert User.objects.count() == 1
    assert AccessToken(response.json()["access"])["user_id"] == str(existing.pk)
    existing.refresh_from_db()
    assert existing.has_usable_password()


def test_verify_accepts_the_email_in_another_case(api_client, mailoutbox):
    code = start_and_read_code(api_client, mailoutbox)

    response = verify(api_client, code, email="PASSWORDLESS@example.com")

    assert response.status_code == 200, response.content
    assert User.objects.get().email == EMAIL


def test_verify_refuses_a_wrong_code_and_counts_the_attempt(api_client, mailoutbox):
    code = start_and_read_code(api_client, mailoutbox)

    response = verify(api_client, wrong(code))

    assert_error(response, 400, "invalid_code", "code")
    assert OneTimeCode.objects.get().attempts == 1
    assert not User.objects.exists()


def test_the_right_code_still_works_after_fewer_than_five_wrong_ones(api_client, mailoutbox):
    code = start_and_read_code(api_client, mailoutbox)
    for _ in range(4):
        verify(api_client, wrong(code))

    response = verify(api_client, code)

    assert response.status_code == 200, response.content


def test_after_five_wrong_codes_even_the_right_code_is_refused(api_client, mailoutbox):
    code = start_and_read_code(api_client, mailoutbox)
    for _ in range(5):
        assert_error(verify(api_client, wrong(code)), 400, "invalid_code", "code")

    response = verify(api_client, code)

    assert_error(response, 400, "too_many_attempts", "code")
    assert OneTimeCode.objects.get().attempts == 5
    assert not User.objects.exists()


def test_a_new_code_after_too_many_attempts_works(api_client, mailoutbox):
    code = start_and_read_code(api_client, mailoutbox)
    for _ in range(5):
        verify(api_client, wrong(code))

    new_code = start_and_read_code(api_client, mailoutbox)
    response = verify(api_client, new_code)

    assert response.status_code == 200, response.content


def test_an_expired_code_is_refused(api_client, mailoutbox):
    code = start_and_read_code(api_client, mailoutbox)
    OneTimeCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = verify(api_client, code)

    assert_error(response, 400, "invalid_code", "code")
    assert not User.objects.exists()


def test_a_newer_code_replaces_the_older_one(api_client, mailoutbox, fixed_codes):
    fixed_codes(111111, 222222)
    first = start_and_read_code(api_client, mailoutbox)
    second = start_and_read_code(api_client, mailoutbox)
    assert (first, second) == ("111111", "222222")

    assert_error(verify(api_client, first), 400, "invalid_code", "code")
    response = verify(api_client, second)

    assert response.status_code == 200, response.content


def test_a_replaced_code_stays_dead_after_the_newer_one_expires(
    api_client, mailoutbox, fixed_codes
):
    fixed_codes(111111, 222222)
    first = start_and_read_code(api_client, mailoutbox)
    start_and_read_code(api_client, mailoutbox)
    newer = OneTimeCode.objects.order_by("-created_at", "-pk").first()
    OneTimeCode.objects.filter(pk=newer.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = verify(api_client, first)

    assert_error(response, 400, "invalid_code", "code")
    assert not User.objects.exists()


def test_a_code_used_once_is_refused_the_second_time(api_client, mailoutbox):
    code = start_and_read_code(api_client, mailoutbox)
    assert verify(api_client, code).status_code == 200

    response = verify(api_client, code)

    assert_error(response, 400, "invalid_code", "code")
    assert User.objects.count() == 1


def test_a_code_is_only_good_for_the_address_it_was_sent_to(api_client, mailoutbox):
    code = start_and_read_code(api_client, mailoutbox)

    response = verify(api_client, code, email="intruder@example.com")

    assert_error(response, 400, "invalid_code", "code")
    assert not User.objects.exists()


def test_verify_without_any_code_requested_is_refused(api_client):
    response = verify(api_client, "123456")

    assert_error(response, 400, "invalid_code", "code")
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("code", "error_code"),
    [
        ("12345", "invalid"),
        ("abcdef", "invalid"),
        ("12 456", "invalid"),
        ("1234567", "max_length"),
        ("", "blank"),
        ("\u0661\u0662\u0663\u0664\u0665\u0666", "invalid"),  # Arabic-Indic digits
        (None, "null"),
    ],
)
def test_verify_refuses_a_malformed_code_without_using_up_an_attempt(
    api_client, mailoutbox, code, error_code
):
    start_and_read_code(api_client, mailoutbox)

    response = verify(api_client, code)

    data = assert_error(response, 400, error_code, "code")
    assert {e["attr"] for e in data["errors"]} == {"code"}
    assert OneTimeCode.objects.get().attempts == 0


@pytest.mark.parametrize("field", ["email", "code"])
def test_verify_refuses_a_request_missing_a_field(api_client, field):
    data = {"email": EMAIL, "code": "123456"}
    del data[field]

    response = api_client.post(VERIFY_URL, data, format="json")

    assert_error(response, 400, "required", field)


def test_verify_refuses_an_inactive_user(api_client, mailoutbox):
    UserFactory(email=EMAIL, is_active=False)
    code = start_and_read_code(api_client, mailoutbox)

    response = verify(api_client, code)

    assert_error(response, 401, "user_inactive")
    assert "access" not in response.json()


def test_otp_endpoints_work_without_the_trailing_slash(api_client, mailoutbox):
    assert api_client.post(START_URL.rstrip("/"), {"email": EMAIL}, format="json").status_code == (
        200
    )
    code = mailed_code(mailoutbox[-1])

    response = api_client.post(
        VERIFY_URL.rstrip("/"), {"email": EMAIL, "code": code}, format="json"
    )

    assert response.status_code == 200, response.content


def test_otp_delete_expired_drops_only_expired_codes(api_client, mailoutbox):
    start(api_client)
    start(api_client, "other@example.com")
    OneTimeCode.objects.filter(email=EMAIL).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert services.otp_delete_expired() == 1
    assert list(OneTimeCode.objects.values_list("email", flat=True)) == ["other@example.com"]


# --- Abuse: staff, guessing budgets, racing starts -------------------------------------


def test_a_staff_member_gets_no_code_and_the_answer_does_not_say_so(api_client, mailoutbox):
    staff = StaffFactory(email="boss@example.com")
    customer_answer = start(api_client, "customer@example.com")

    response = start(api_client, staff.email)

    assert response.status_code == 200
    assert response.json() == customer_answer.json()
    assert [m.to for m in mailoutbox] == [["customer@example.com"]]
    assert not OneTimeCode.objects.filter(email=staff.email).exists()


def test_a_code_made_before_the_member_became_staff_logs_no_one_in(api_client, mailoutbox):
    user = UserFactory(email="soon.staff@example.com")
    code = start_and_read_code(api_client, mailoutbox, user.email)
    User.objects.filter(pk=user.pk).update(is_staff=True)

    response = verify(api_client, code, user.email)

    assert_error(response, 400, "invalid_code", "code")
    assert "access" not in response.json()


@pytest.mark.usefixtures("no_rate_limits")
def test_new_codes_do_not_buy_new_guesses_beyond_the_daily_budget(api_client, mailoutbox, settings):
    settings.OTP_MAX_FAILURES_PER_DAY = 7
    failures = 0
    while failures < 7:
        code = start_and_read_code(api_client, mailoutbox)
        for _ in range(min(settings.OTP_MAX_ATTEMPTS, 7 - failures)):
            assert_error(verify(api_client, wrong(code)), 400, "invalid_code", "code")
            failures += 1
    # The budget is spent: no new code, and the right code is refused too.
    assert_error(start(api_client), 429, "throttled")
    assert_error(verify(api_client, code), 400, "too_many_attempts", "code")
    # A day later the address may try again.
    OneTimeCode.objects.update(created_at=timezone.now() - timedelta(days=1, minutes=1))
    code = start_and_read_code(api_client, mailoutbox)
    assert verify(api_client, code).status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_for_one_address_never_make_more_than_the_hourly_cap():
    results = run_together(16, lambda i: services.otp_start(email=EMAIL))
    made = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if not isinstance(r, str)]
    assert len(made) == services.OTP_STARTS_PER_HOUR, results
    assert all(getattr(r, "code", None) == "throttled" for r in refused), refused
    assert OneTimeCode.objects.filter(email=EMAIL).count() == services.OTP_STARTS_PER_HOUR


@pytest.mark.parametrize(
    "address",
    [
        "shopper@ex\u0430mple.com",  # a Cyrillic a among Latin letters
        "shopper@xn--exmple-4nf.com",  # the same, in punycode
        "sh\u00f6pper@example.com",  # a non-ASCII part before the @
    ],
)
def test_look_alike_addresses_get_no_code(api_client, mailoutbox, address):
    response = start(api_client, address)
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["attr"] == "email"
    assert mailoutbox == []
