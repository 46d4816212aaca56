"""Login, registration and one-time codes are rate-limited per client address (SPEC §3)."""

import pytest

from accounts.models import OneTimeCode, User
from accounts.services import user_tokens
from accounts.tests.factories import PASSWORD, UserFactory
from accounts.throttles import LoginAccountThrottle, OtpRecipientThrottle
from core.testing import assert_error
from core.throttling import ClientScopedThrottle, FixedWindowMixin

pytestmark = pytest.mark.django_db

# A fixed clock, 20 s into a one-minute window: the whole test runs in one
# window whatever the real time, and the wait until the next one is known.
WINDOW_START = 1_800_000_000
NOW = WINDOW_START + 20


@pytest.fixture
def clock(monkeypatch):
    now = {"t": float(NOW)}
    monkeypatch.setattr(FixedWindowMixin, "timer", lambda self: now["t"], raising=False)
    return now


@pytest.fixture
def three_a_minute(monkeypatch, clock):
    rates = {
        "login": "3/min",
        "register": "3/min",
        "refresh": "3/min",
        "otp_start": "3/min",
        "otp_verify": "3/min",
        "login_account": "1000/min",
        "otp_recipient": "1000/min",
    }
    monkeypatch.setattr(ClientScopedThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(LoginAccountThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(OtpRecipientThrottle, "THROTTLE_RATES", rates)
    return clock


def login(client, user, password=PASSWORD, **extra):
    return client.post(
        "/api/v1/auth/token/", {"email": user.email, "password": password}, format="json", **extra
    )


def register(client, n, **extra):
    return client.post(
        "/api/v1/auth/register/",
        {"email": f"throttled{n}@example.com", "password": PASSWORD},
        format="json",
        **extra,
    )


def otp_start(client, **extra):
    return client.post(
        "/api/v1/auth/otp/start/", {"email": "otp@example.com"}, format="json", **extra
    )


def assert_throttled(response, wait=60 - 20):
    assert_error(response, 429, "throttled")
    assert response["Retry-After"] == str(wait)


def test_login_is_throttled_after_the_rate_with_retry_after(api_client, user, three_a_minute):
    for _ in range(3):
        assert login(api_client, user).status_code == 200

    assert_throttled(login(api_client, user))


def test_failed_logins_count_against_the_login_budget(api_client, user, three_a_minute):
    for _ in range(3):
        assert_error(login(api_client, user, "Wrong-Password-1"), 401, "authentication_failed")

    assert_throttled(login(api_client, user))


def test_token_refresh_has_its_own_budget(api_client, user, three_a_minute):
    for _ in range(3):
        assert login(api_client, user).status_code == 200

    def refresh():
        return api_client.post(
            "/api/v1/auth/token/refresh/",
            {"refresh": user_tokens(user=user)["refresh"]},
            format="json",
        )

    for _ in range(3):
        assert refresh().status_code == 200
    assert_throttled(refresh())


def test_registration_is_throttled_after_the_rate(api_client, three_a_minute):
    for n in range(3):
        assert register(api_client, n).status_code == 201

    assert_throttled(register(api_client, 3))
    assert not User.objects.filter(email="throttled3@example.com").exists()


def test_otp_start_is_throttled_after_the_rate(api_client, mailoutbox, three_a_minute):
    for _ in range(3):
        assert otp_start(api_client).status_code == 200

    assert_throttled(otp_start(api_client))
    assert len(mailoutbox) == 3
    assert OneTimeCode.objects.count() == 3


def test_otp_verify_is_throttled_on_its_own_budget(api_client, mailoutbox, three_a_minute):
    otp_start(api_client)

    def verify():
        return api_client.post(
            "/api/v1/auth/otp/verify/",
            {"email": "otp@example.com", "code": "000000"},
            format="json",
        )

    for _ in range(3):
        assert verify().status_code == 400
    assert_throttled(verify())
    assert OneTimeCode.objects.get().attempts <= 3


def test_each_scope_has_its_own_budget(api_client, user, mailoutbox, three_a_minute):
    for _ in range(3):
        login(api_client, user)
    assert login(api_client, user).status_code == 429

    assert register(api_client, 1).status_code == 201
    assert otp_start(api_client).status_code == 200


def test_different_client_addresses_have_separate_budgets(api_client, user, three_a_minute):
    for _ in range(3):
        assert login(api_client, user, REMOTE_ADDR="203.0.113.1").status_code == 200
    assert_throttled(login(api_client, user, REMOTE_ADDR="203.0.113.1"))

    for _ in range(3):
        assert login(api_client, user, REMOTE_ADDR="203.0.113.2").status_code == 200
    assert_throttled(login(api_client, user, REMOTE_ADDR="203.0.113.2"))


def test_a_forged_x_forwarded_for_does_not_buy_a_new_budget(api_client, user, three_a_minute):
    for n in range(3):
        login(api_client, user, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")

    assert_throttled(login(api_client, user, HTTP_X_FORWARDED_FOR="198.51.100.99"))


def test_the_budget_comes_back_in_the_next_window(api_client, user, three_a_minute):
    for _ in range(3):
        login(api_client, user)
    assert login(api_client, user).status_code == 429

    three_a_minute["t"] = WINDOW_START + 60

    assert login(api_client, user).status_code == 200


def test_retry_after_counts_down_to_the_end_of_the_window(api_client, user, three_a_minute):
    for _ in range(3):
        login(api_client, user)
    three_a_minute["t"] = WINDOW_START + 55

    assert_throttled(login(api_client, user), wait=5)


def test_one_account_gets_ten_logins_a_minute_from_any_number_of_addresses(api_client, user, clock):
    for n in range(10):
        response = login(api_client, user, "Wrong-Password-1", REMOTE_ADDR=f"203.0.113.{n}")
        assert response.status_code == 401
    assert_throttled(login(api_client, user, REMOTE_ADDR="203.0.113.99"))

    # Other accounts are not locked out by it.
    assert login(api_client, UserFactory(), REMOTE_ADDR="203.0.113.99").status_code == 200


def test_one_address_gets_sixty_logins_a_minute_across_accounts(api_client, clock):
    users = UserFactory.create_batch(6)
    for _ in range(10):
        for user in users:
            assert login(api_client, user).status_code == 200

    assert_throttled(login(api_client, users[0]))


def test_codes_to_one_address_are_capped_whoever_asks(api_client, clock, monkeypatch, mailoutbox):
    # The default: 3 codes in 10 minutes for one recipient, from any client.
    monkeypatch.setattr(ClientScopedThrottle, "THROTTLE_RATES", {"otp_start": "1000/min"})
    for n in range(3):
        assert otp_start(api_client, REMOTE_ADDR=f"10.0.0.{n}").status_code == 200
    response = otp_start(api_client, REMOTE_ADDR="10.0.0.99")
    # 20 s into a 10-minute window that started at WINDOW_START: 580 s to wait.
    assert_throttled(response, wait=600 - 20)
    assert len(mailoutbox) == 3
    other = api_client.post(
        "/api/v1/auth/otp/start/", {"email": "other@example.com"}, format="json"
    )
    assert other.status_code == 200


def test_a_rate_may_count_several_periods():
    assert FixedWindowMixin().parse_rate("3/10min") == (3, 600)
    assert FixedWindowMixin().parse_rate("10/min") == (10, 60)
    assert FixedWindowMixin().parse_rate("5/2h") == (5, 7200)
