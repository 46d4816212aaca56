"""Brute-force lockout of logins (SPEC §11, django-axes): five failures for one
account from one address lock that pair for fifteen minutes, whether they come
through the admin's login or the API's token endpoint."""

import json
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.core.management import call_command
from django.db.models import F
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from accounts.lockout import lockout_response
from accounts.services import user_authenticate
from accounts.tests.factories import PASSWORD, StaffFactory
from core.exceptions import Throttled
from core.testing import assert_error

pytestmark = pytest.mark.django_db

LOGIN_URL = "/admin/login/"
TOKEN_URL = "/api/v1/auth/token/"
ATTEMPTS_URL = "/admin/axes/accessattempt/"
WRONG = "Wrong-Password-1"
ADDRESS = "10.0.0.1"
COOL_OFF = 15 * 60
LOCKED_TEXT = "Too many failed logins for this account from your address"


def admin_login(client, email, password=PASSWORD, address=ADDRESS, **extra):
    return client.post(
        LOGIN_URL,
        {"username": email, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
        **extra,
    )


def api_login(client, email, password=PASSWORD, address=ADDRESS, **extra):
    return client.post(
        TOKEN_URL,
        {"email": email, "password": password},
        format="json",
        REMOTE_ADDR=address,
        **extra,
    )


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def assert_admin_locked(response):
    """The admin's login page again, with the reason, as a 429 for people."""
    assert response.status_code == 429, response.status_code
    assert response["Content-Type"].startswith("text/html")
    assert LOCKED_TEXT in response.content.decode()
    assert 'id="login-form"' in response.content.decode()
    assert COOL_OFF - 5 <= int(response["Retry-After"]) <= COOL_OFF


def assert_api_locked(response, wait=COOL_OFF):
    assert_error(response, 429, "throttled")
    assert LOCKED_TEXT in response.json()["errors"][0]["detail"]
    assert wait - 5 <= int(response["Retry-After"]) <= wait


def fail_admin_logins(client, email, times, **extra):
    return [admin_login(client, email, WRONG, **extra) for _ in range(times)]


def age_attempts(by: timedelta):
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - by)


@pytest.fixture
def staff(db):
    return StaffFactory(email="staff@example.com")


@pytest.fixture
def locked(client, staff):
    """The pair (staff@example.com, 10.0.0.1) locked by five wrong passwords."""
    fail_admin_logins(client, staff.email, 5)
    return staff


# --- The admin's login ------------------------------------------------------------------


def test_four_wrong_admin_passwords_leave_the_right_one_working(client, staff):
    for response in fail_admin_logins(client, staff.email, 4):
        assert response.status_code == 200

    assert admin_login(client, staff.email).status_code == 302
    assert logged_in(client)


def test_the_fifth_wrong_admin_password_locks_the_pair(client, staff):
    *_, fifth = fail_admin_logins(client, staff.email, 5)

    assert_admin_locked(fifth)


def test_a_locked_pair_is_refused_the_admin_even_with_the_right_password(client, locked):
    response = admin_login(client, locked.email)

    assert_admin_locked(response)
    assert not logged_in(client)


def test_the_locked_admin_page_keeps_the_account_filled_in(client, locked):
    response = admin_login(client, locked.email)

    assert 'value="staff@example.com"' in response.content.decode()


def test_the_same_account_from_another_address_is_not_locked(client, locked):
    assert admin_login(client, locked.email, address="10.0.0.2").status_code == 302


def test_another_account_from_the_same_address_is_not_locked(client, locked):
    other = StaffFactory()

    assert admin_login(client, other.email).status_code == 302


def test_the_account_is_counted_whatever_its_case_and_spaces(client, staff):
    fail_admin_logins(client, " Staff@Example.COM ", 5)

    assert_admin_locked(admin_login(client, staff.email))


# --- The API's token endpoint shares the count --------------------------------------------


def test_failed_api_logins_count_toward_the_admin_lock(client, staff):
    api_client = APIClient()
    fail_admin_logins(client, staff.email, 3)
    for _ in range(2):
        api_login(api_client, staff.email, WRONG)

    assert_admin_locked(admin_login(client, staff.email))


def test_wrong_api_passwords_answer_401_until_the_fifth(staff):
    api_client = APIClient()
    for _ in range(4):
        assert_error(api_login(api_client, staff.email, WRONG), 401, "authentication_failed")

    assert_api_locked(api_login(api_client, staff.email, WRONG))


def test_a_pair_locked_in_the_admin_gets_429_from_the_api_even_with_the_right_password(locked):
    response = api_login(APIClient(), locked.email)

    assert_api_locked(response)
    assert "access" not in response.json()


def test_the_api_locks_the_pair_only_for_its_address(locked):
    assert api_login(APIClient(), locked.email, address="10.0.0.2").status_code == 200


def test_the_login_service_refuses_a_locked_pair_as_throttled(locked):
    request = RequestFactory().post(TOKEN_URL, REMOTE_ADDR=ADDRESS)

    with pytest.raises(Throttled) as refused:
        user_authenticate(request=request, email=locked.email, password=PASSWORD)

    assert COOL_OFF - 5 <= refused.value.wait <= COOL_OFF


# --- How long it lasts, and clearing it ------------------------------------------------------


def test_the_lock_still_holds_after_fourteen_minutes(client, locked):
    age_attempts(timedelta(minutes=14))

    assert_api_locked(api_login(APIClient(), locked.email), wait=60)
    assert admin_login(client, locked.email).status_code == 429


def test_tries_during_the_lock_do_not_extend_it(client, locked):
    age_attempts(timedelta(minutes=10))
    fail_admin_logins(client, locked.email, 3)

    assert_api_locked(api_login(APIClient(), locked.email), wait=5 * 60)


def test_after_fifteen_minutes_the_right_password_works_again(client, locked):
    age_attempts(timedelta(minutes=15, seconds=1))

    assert admin_login(client, locked.email).status_code == 302
    assert api_login(APIClient(), locked.email).status_code == 200


def test_a_superuser_sees_the_lockout_in_the_admin(locked, superuser):
    staff_client = Client()
    staff_client.force_login(superuser)

    attempts = staff_client.get(ATTEMPTS_URL, {"locked_out": "yes"})
    failures = staff_client.get("/admin/axes/accessfailurelog/")

    assert attempts.status_code == 200
    assert "staff@example.com" in attempts.content.decode()
    assert ADDRESS in attempts.content.decode()
    assert failures.status_code == 200
    assert AccessFailureLog.objects.filter(username=locked.email, locked_out=True).exists()


def test_deleting_the_attempt_in_the_admin_unlocks_the_pair(client, locked, superuser):
    staff_client = Client()
    staff_client.force_login(superuser)
    attempt = AccessAttempt.objects.get(username=locked.email, ip_address=ADDRESS)

    response = staff_client.post(f"{ATTEMPTS_URL}{attempt.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert admin_login(client, locked.email).status_code == 302


@pytest.mark.parametrize(
    "command",
    [
        ["axes_reset_username", "staff@example.com"],
        ["axes_reset_ip_username", ADDRESS, "staff@example.com"],
    ],
)
def test_the_reset_commands_unlock_the_pair(client, locked, command):
    call_command(*command, verbosity=0)

    assert admin_login(client, locked.email).status_code == 302


def test_the_lockout_is_logged_as_a_warning(client, staff, log_lines):
    fail_admin_logins(client, staff.email, 5)

    assert any("WARNING" in line and "Locking out" in line for line in log_lines())


# --- The client's address ----------------------------------------------------------------------


@pytest.fixture
def one_proxy(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


def test_behind_a_proxy_each_forwarded_address_is_its_own_pair(client, staff, one_proxy):
    fail_admin_logins(client, staff.email, 5, HTTP_X_FORWARDED_FOR="198.51.100.1")

    assert admin_login(client, staff.email, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 302
    assert_api_locked(api_login(APIClient(), staff.email, HTTP_X_FORWARDED_FOR="198.51.100.1"))
    assert AccessAttempt.objects.get().ip_address == "198.51.100.1"


def test_behind_a_proxy_the_address_the_proxy_appended_counts(client, staff, one_proxy):
    for n in range(5):
        admin_login(client, staff.email, WRONG, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.1")

    assert_admin_locked(admin_login(client, staff.email, HTTP_X_FORWARDED_FOR="198.51.100.1"))


def test_without_proxies_a_forged_x_forwarded_for_changes_nothing(client, staff):
    for n in range(5):
        admin_login(client, staff.email, WRONG, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")

    assert_admin_locked(admin_login(client, staff.email, HTTP_X_FORWARDED_FOR="198.51.100.99"))
    assert AccessAttempt.objects.get().ip_address == ADDRESS


# --- Elsewhere ---------------------------------------------------------------------------------


def test_a_lockout_outside_the_admin_answers_the_spec_error_shape(locked):
    request = RequestFactory().post(
        "/api/v1/some-login/", {"username": locked.email}, REMOTE_ADDR=ADDRESS
    )

    response = lockout_response(request, None, {"username": locked.email})

    assert response.status_code == 429
    assert json.loads(response.content) == {
        "type": "client_error",
        "errors": [
            {
                "code": "throttled",
                "detail": f"{LOCKED_TEXT}; try again in 15 minutes.",
                "attr": None,
            }
        ],
    }
    assert COOL_OFF - 5 <= int(response["Retry-After"]) <= COOL_OFF
