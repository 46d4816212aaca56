"""Passwordless login with a one-time code texted to a phone (SPEC §4): the
rules of the e-mail codes, by SMS, and the limits that keep texts from
being abused (toll fraud)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services
from accounts.models import OneTimeCode, SmsMessage, User
from accounts.tests.factories import StaffFactory, UserFactory
from accounts.throttles import OtpRecipientThrottle
from core.testing import assert_error, run_together
from core.throttling import ClientScopedThrottle
from orders_project.tests.test_api_docs import assert_documented

START_URL = "/api/v1/auth/otp/start/"
VERIFY_URL = "/api/v1/auth/otp/verify/"
ME_URL = "/api/v1/auth/me/"
PHONE = "+14155550123"

pytestmark = pytest.mark.django_db


@pytest.fixture
def text(api_client, sms_outbox, sending):
    """Ask for a code for `phone` and return the answer; what the request
    queued is sent before the test goes on."""

    def start(phone=PHONE, client=api_client, **body):
        with sending():
            return client.post(START_URL, {"phone": phone, **body}, format="json")

    return start


def verify(client, code, phone=PHONE):
    return client.post(VERIFY_URL, {"phone": phone, "code": code}, format="json")


def texted_code(sms) -> str:
    match = re.search(r"\b(\d{6})\b", sms.body)
    assert match, sms.body
    return match.group(1)


@pytest.fixture
def code_for(text, sms_outbox):
    def start_and_read(phone=PHONE) -> str:
        response = text(phone)
        assert response.status_code == 200, response.content
        return texted_code(sms_outbox[-1])

    return start_and_read


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.fixture
def fixed_codes(monkeypatch):
    def use(*numbers):
        draws = iter(numbers)
        monkeypatch.setattr(services.secrets, "randbelow", lambda _n: next(draws))

    return use


@pytest.fixture
def no_rate_limits(monkeypatch):
    """The request throttles out of the way, to reach the caps kept in the database."""
    rates = {"otp_start": "1000/min", "otp_recipient": "1000/min", "otp_verify": "1000/min"}
    monkeypatch.setattr(ClientScopedThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(OtpRecipientThrottle, "THROTTLE_RATES", rates)


# --- Start -------------------------------------------------------------------------------


def test_start_with_a_phone_texts_one_code_to_it(text, sms_outbox, mailoutbox):
    response = text()

    assert response.status_code == 200, response.content
    assert response.json() == {"detail": "A login code was sent.", "expires_in": 300}
    assert [sms.phone for sms in sms_outbox] == [PHONE]
    assert re.fullmatch(r"\d{6}", texted_code(sms_outbox[0]))
    assert "5 minutes" in sms_outbox[0].body
    assert mailoutbox == []
    message = SmsMessage.objects.get()
    assert (message.phone, message.status, message.attempts) == (PHONE, "sent", 1)


@pytest.mark.parametrize("spelling", ["+1 415 555 0123", "+1 (415) 555-0123", " +14155550123 "])
def test_a_phone_is_kept_in_e164_however_it_is_spelled(text, sms_outbox, spelling):
    assert text(spelling).status_code == 200

    assert sms_outbox[0].phone == PHONE
    assert OneTimeCode.objects.get().phone == PHONE
    assert OneTimeCode.objects.get().email == ""


def test_the_text_goes_out_only_after_the_code_is_committed(
    api_client, sms_outbox, celery_eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_client.post(START_URL, {"phone": PHONE}, format="json")
        assert response.status_code == 200
    # The row is written; nothing was sent inside the transaction.
    assert sms_outbox == []
    assert SmsMessage.objects.get().status == "queued"

    for callback in callbacks:
        callback()

    assert [sms.phone for sms in sms_outbox] == [PHONE]


def test_start_echoes_the_texted_code_as_dev_code_in_debug(text, sms_outbox, settings):
    settings.DEBUG = True

    response = text()

    assert response.json()["dev_code"] == texted_code(sms_outbox[0])


def test_start_does_not_echo_the_code_without_debug(text, sms_outbox, settings):
    settings.DEBUG = False

    response = text()

    assert "dev_code" not in response.json()
    assert texted_code(sms_outbox[0]) not in response.content.decode()


def test_the_code_is_stored_hashed_and_the_text_is_blanked_once_sent(text, sms_outbox, fixed_codes):
    fixed_codes(480913)

    text()

    assert texted_code(sms_outbox[0]) == "480913"
    for model in (OneTimeCode, SmsMessage):
        row = model.objects.values().get()
        assert all("480913" not in str(value) for value in row.values()), row
    assert len(OneTimeCode.objects.get().code_hash) == 64


def test_a_phone_and_an_email_with_the_same_code_have_different_hashes(fixed_codes):
    fixed_codes(111111, 111111)
    services.otp_start(phone=PHONE)
    services.otp_start(email="someone@example.com")

    hashes = set(OneTimeCode.objects.values_list("code_hash", flat=True))
    assert len(hashes) == 2


def test_start_creates_no_user(text):
    text()

    assert not User.objects.exists()


def test_start_refuses_both_an_email_and_a_phone(text, sms_outbox, mailoutbox):
    response = text(email="someone@example.com")

    assert_error(response, 400, "invalid", "phone")
    assert sms_outbox == [] and mailoutbox == []
    assert not OneTimeCode.objects.exists()


def test_start_refuses_neither_naming_both_fields(api_client):
    response = api_client.post(START_URL, {}, format="json")

    assert_error(response, 400, "required", "email")
    assert_error(response, 400, "required", "phone")


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        ("not a phone", "invalid"),
        ("4155550123", "invalid"),  # no country code
        ("+1415555", "invalid"),  # too short
        ("+447700900123", "invalid"),  # a range never assigned (kept for drama)
        ("+1" + "5" * 40, "max_length"),
        ("", "blank"),
        (None, "null"),
        (14155550123, "invalid"),
    ],
)
def test_start_refuses_a_malformed_or_unassigned_phone(text, sms_outbox, phone, code):
    response = text(phone)

    data = assert_error(response, 400, code, "phone")
    assert {e["attr"] for e in data["errors"]} == {"phone"}
    assert sms_outbox == []
    assert not OneTimeCode.objects.exists() and not SmsMessage.objects.exists()


@pytest.mark.parametrize(
    "phone",
    [
        "+19005550123",  # US premium rate
        "+448712345678",  # GB premium rate
        "+33891234567",  # FR premium rate
        "+33811234567",  # FR shared cost
        "+34901123456",  # ES shared cost
        "+447012345678",  # GB personal number
        "+18665550123",  # US toll free
        "+4930123456",  # DE fixed line: no SMS
    ],
)
def test_start_refuses_numbers_that_cost_more_or_take_no_texts(text, sms_outbox, phone):
    response = text(phone)

    assert_error(response, 400, "phone_not_allowed", "phone")
    assert sms_outbox == []
    assert not SmsMessage.objects.exists()


@pytest.mark.parametrize("phone", ["+447400123456", "+4915901234567", "+33612345678"])
def test_start_accepts_mobile_numbers_of_any_country_by_default(text, sms_outbox, phone):
    assert text(phone).status_code == 200
    assert [sms.phone for sms in sms_outbox] == [phone]


def test_sms_allowed_countries_restrict_where_codes_go(text, sms_outbox, settings):
    settings.SMS_ALLOWED_COUNTRIES = ["US", "ca"]

    assert_error(text("+447400123456"), 400, "phone_not_allowed", "phone")
    assert text("+14165550123").status_code == 200  # Toronto
    assert text(PHONE).status_code == 200

    assert [sms.phone for sms in sms_outbox] == ["+14165550123", PHONE]


def test_a_staff_member_gets_no_text_and_the_answer_does_not_say_so(text, sms_outbox):
    StaffFactory(phone="+14155550199")
    customer_answer = text(PHONE)

    response = text("+14155550199")

    assert response.status_code == 200
    assert response.json() == customer_answer.json()
    assert [sms.phone for sms in sms_outbox] == [PHONE]
    assert not OneTimeCode.objects.filter(phone="+14155550199").exists()


# --- Abuse: the caps of a phone --------------------------------------------------------


@pytest.mark.usefixtures("no_rate_limits")
def test_a_phone_gets_at_most_its_hourly_cap_of_codes(text, sms_outbox, settings):
    assert settings.OTP_SMS_STARTS_PER_HOUR == 5
    for _ in range(5):
        assert text().status_code == 200

    response = text("+1 415 555 0123")  # the same number, spelled otherwise

    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert len(sms_outbox) == 5
    assert SmsMessage.objects.count() == 5


@pytest.mark.usefixtures("no_rate_limits")
def test_the_hourly_cap_of_a_phone_is_lower_than_an_addresses_and_per_number(
    text, sms_outbox, settings
):
    settings.OTP_SMS_STARTS_PER_HOUR = 2
    for _ in range(2):
        text()
    assert text().status_code == 429

    assert text("+14155550124").status_code == 200
    assert services.otp_start(email="someone@example.com") is not None


@pytest.mark.usefixtures("no_rate_limits")
def test_codes_older_than_an_hour_do_not_count_against_a_phones_cap(text):
    for _ in range(5):
        text()
    OneTimeCode.objects.update(created_at=timezone.now() - timedelta(hours=1, minutes=1))

    assert text().status_code == 200


@pytest.mark.usefixtures("no_rate_limits")
def test_new_codes_do_not_buy_a_phone_new_guesses_beyond_the_daily_budget(
    api_client, code_for, text, settings
):
    settings.OTP_MAX_FAILURES_PER_DAY = 7
    settings.OTP_SMS_STARTS_PER_HOUR = 100
    failures = 0
    while failures < 7:
        code = code_for()
        for _ in range(min(settings.OTP_MAX_ATTEMPTS, 7 - failures)):
            assert_error(verify(api_client, wrong(code)), 400, "invalid_code", "code")
            failures += 1

    assert_error(text(), 429, "throttled")
    assert_error(verify(api_client, code), 400, "too_many_attempts", "code")
    OneTimeCode.objects.update(created_at=timezone.now() - timedelta(days=1, minutes=1))
    assert verify(api_client, code_for()).status_code == 200


def test_a_phone_gets_at_most_three_codes_in_ten_minutes_whoever_asks(text, sms_outbox):
    clients = [APIClient(REMOTE_ADDR=f"203.0.113.{n}") for n in range(4)]
    spellings = [PHONE, "+1 415 555 0123", "+1 (415) 555-0123", PHONE]
    answers = [text(spelling, client=c) for spelling, c in zip(spellings, clients, strict=True)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert_error(answers[-1], 429, "throttled")
    assert len(sms_outbox) == 3
    # Another number, from the same client as the refused request, is not held back.
    assert text("+14155550124", client=clients[-1]).status_code == 200


# --- Verify ------------------------------------------------------------------------------


def test_the_first_login_by_phone_creates_a_customer_with_no_email(api_client, code_for):
    response = verify(api_client, code_for())

    assert response.status_code == 200, response.content
    user = User.objects.get()
    assert (str(user.phone), user.email) == (PHONE, None)
    assert not user.is_staff and user.is_active
    assert not user.has_usable_password()
    assert AccessToken(response.json()["access"])["user_id"] == str(user.pk)
    me = api_client.get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert me.json() == {
        "id": user.pk,
        "email": None,
        "phone": PHONE,
        "first_name": "",
        "last_name": "",
        "is_staff": False,
    }


def test_two_customers_without_email_can_sign_up(api_client, code_for):
    for phone in (PHONE, "+14155550124"):
        assert verify(api_client, code_for(phone), phone).status_code == 200

    assert list(User.objects.values_list("email", flat=True)) == [None, None]


def test_verify_logs_in_the_user_who_has_that_phone(api_client, code_for):
    existing = UserFactory(phone=PHONE)

    response = verify(api_client, code_for())

    assert response.status_code == 200, response.content
    assert User.objects.count() == 1
    assert AccessToken(response.json()["access"])["user_id"] == str(existing.pk)
    existing.refresh_from_db()
    assert existing.has_usable_password()


def test_verify_accepts_the_phone_spelled_otherwise(api_client, code_for):
    response = verify(api_client, code_for(), phone="+1 (415) 555-0123")

    assert response.status_code == 200, response.content
    assert str(User.objects.get().phone) == PHONE


def test_a_wrong_code_counts_and_five_of_them_burn_the_code(api_client, code_for):
    code = code_for()
    for _ in range(5):
        assert_error(verify(api_client, wrong(code)), 400, "invalid_code", "code")

    assert_error(verify(api_client, code), 400, "too_many_attempts", "code")
    assert OneTimeCode.objects.get().attempts == 5
    assert not User.objects.exists()


def test_an_expired_texted_code_is_refused(api_client, code_for):
    code = code_for()
    OneTimeCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert_error(verify(api_client, code), 400, "invalid_code", "code")


def test_a_newer_texted_code_replaces_the_older_one(api_client, code_for, fixed_codes):
    fixed_codes(111111, 222222)
    first, second = code_for(), code_for()

    assert_error(verify(api_client, first), 400, "invalid_code", "code")
    assert verify(api_client, second).status_code == 200


def test_a_texted_code_is_good_only_for_its_number(api_client, code_for):
    code = code_for()

    assert_error(verify(api_client, code, phone="+14155550124"), 400, "invalid_code", "code")
    assert not User.objects.exists()


def test_a_texted_code_does_not_log_in_by_email_nor_a_mailed_one_by_phone(
    api_client, code_for, mailoutbox
):
    UserFactory(email="both@example.com", phone=PHONE)
    texted = code_for()
    response = api_client.post(
        VERIFY_URL, {"email": "both@example.com", "code": texted}, format="json"
    )
    assert_error(response, 400, "invalid_code", "code")

    api_client.post(START_URL, {"email": "both@example.com"}, format="json")
    mailed = re.search(r"\b(\d{6})\b", mailoutbox[-1].body).group(1)
    assert_error(verify(api_client, mailed), 400, "invalid_code", "code")


def test_a_code_made_before_the_member_became_staff_logs_no_one_in(api_client, code_for):
    user = UserFactory(phone=PHONE)
    code = code_for()
    User.objects.filter(pk=user.pk).update(is_staff=True)

    assert_error(verify(api_client, code), 400, "invalid_code", "code")


def test_verify_refuses_an_inactive_user(api_client, code_for):
    UserFactory(phone=PHONE, is_active=False)

    response = verify(api_client, code_for())

    assert_error(response, 401, "user_inactive")


def test_verify_refuses_both_an_email_and_a_phone(api_client, code_for):
    code = code_for()

    response = api_client.post(
        VERIFY_URL, {"phone": PHONE, "email": "a@example.com", "code": code}, format="json"
    )

    assert_error(response, 400, "invalid", "phone")
    assert OneTimeCode.objects.get().attempts == 0


def test_verify_refuses_neither(api_client):
    response = api_client.post(VERIFY_URL, {"code": "123456"}, format="json")

    assert_error(response, 400, "required", "email")
    assert_error(response, 400, "required", "phone")


@pytest.mark.parametrize("phone", ["not a phone", "+1415555", "4155550123"])
def test_verify_refuses_a_malformed_phone(api_client, phone):
    assert_error(verify(api_client, "123456", phone=phone), 400, "invalid", "phone")


def test_the_service_refuses_a_blank_email_rather_than_match_a_phones_code(code_for):
    code = code_for()

    with pytest.raises(services.ValidationError):
        services.otp_verify(email="", code=code)
    with pytest.raises(services.ValidationError):
        services.otp_verify(email="  ", code=code)
    assert OneTimeCode.objects.get().attempts == 0


# --- The schema ---------------------------------------------------------------------------


def test_the_schema_documents_both_shapes_of_a_code_request(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]
    for path, name in [("otp/start/", "OtpStartRequest"), ("otp/verify/", "OtpVerifyRequest")]:
        body = schema["paths"][f"/api/v1/auth/{path}"]["post"]["requestBody"]["content"]
        examples = body["application/json"]["examples"]
        assert {"email", "phone"} <= set(components[name]["properties"])
        assert not {"email", "phone"} & set(components[name].get("required", []))
        assert [set(e["value"]) - {"code"} for e in examples.values()] == [{"email"}, {"phone"}]
    phone_errors = components["V1AuthOtpStartCreatePhoneErrorComponent"]["properties"]["code"]
    assert {"required", "invalid", "phone_not_allowed"} <= set(phone_errors["enum"])
    assert "patch" in schema["paths"]["/api/v1/auth/me/"]


@pytest.mark.parametrize(
    "body",
    [{"phone": "+19005550123"}, {"phone": "nope"}, {}, {"phone": PHONE, "email": "a@b.example"}],
)
def test_refusals_of_a_phone_match_the_schema(client, api_client, body):
    response = api_client.post(START_URL, body, format="json")

    assert response.status_code == 400
    assert_documented(client, START_URL, "post", response)


def test_the_answers_to_a_texted_code_match_the_schema(client, text, api_client, code_for):
    assert_documented(client, START_URL, "post", text("+14155550124"))
    assert_documented(client, VERIFY_URL, "post", verify(api_client, code_for()))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_for_one_phone_never_make_more_than_its_hourly_cap(settings):
    spellings = [PHONE, "+1 415 555 0123", "+1 (415) 555-0123", "+1-415-555-0123"]
    results = run_together(12, lambda i: services.otp_start(phone=spellings[i % 4]))

    made = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if not isinstance(r, str)]
    assert len(made) == settings.OTP_SMS_STARTS_PER_HOUR, results
    assert all(getattr(r, "code", None) == "throttled" for r in refused), refused
    assert OneTimeCode.objects.filter(phone=PHONE).count() == settings.OTP_SMS_STARTS_PER_HOUR
    assert SmsMessage.objects.filter(phone=PHONE).count() == settings.OTP_SMS_STARTS_PER_HOUR
