"""Staff two-factor in the admin (SPEC §11): with ADMIN_REQUIRE_2FA on, a
member enrols an authenticator (QR code) before any admin page, the login
asks for a code (TOTP or a backup code), and `reset_2fa` starts them over.

The flows go through the real login view; codes are computed from the
device's key, as the member's phone would."""

import io
import re
from base64 import b32decode

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import two_factor
from accounts.tests.factories import PASSWORD, StaffFactory

pytestmark = pytest.mark.django_db

LOGIN = reverse("admin:login")
INDEX = reverse("admin:index")
LOGOUT = reverse("admin:logout")
ENROL = reverse("admin:two_factor_enrol")
ORDERS = reverse("admin:orders_order_changelist")
PRODUCTS = reverse("admin:inventory_product_changelist")
USERS = reverse("admin:accounts_user_changelist")


@pytest.fixture
def two_factor_on(settings):
    settings.ADMIN_REQUIRE_2FA = True


@pytest.fixture
def member(db):
    return StaffFactory(email="sam@example.com", is_superuser=True)


@pytest.fixture
def authenticator(member):
    return TOTPDevice.objects.create(user=member, name="Phone", confirmed=True)


@pytest.fixture
def backup_codes(member, authenticator):
    return two_factor.issue_backup_codes(user=member)


def code_for(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift + steps_ahead)
    return f"{totp.token():0{device.digits}d}"


def wrong_code_for(device: TOTPDevice) -> str:
    """A code of the right shape that the device accepts at no step near now."""
    near = {code_for(device, steps_ahead=step) for step in range(-3, 4)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)


def log_in(client, *, code: str | None = None, email: str = "sam@example.com", next_url=INDEX):
    data = {"username": email, "password": PASSWORD, "next": next_url}
    if code is not None:
        data["otp_token"] = code
    return client.post(LOGIN, data)


def pending_device(member) -> TOTPDevice:
    return TOTPDevice.objects.get(user=member, confirmed=False)


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def shown_backup_codes(response) -> list[str]:
    block = re.search(r'id="backup-codes">(.*?)</ol>', response.content.decode(), re.S)
    return re.findall(r"<li>(\w+)</li>", block.group(1)) if block else []


# --- Enrolment -------------------------------------------------------------------------


def test_a_member_without_a_device_is_sent_to_enrol_from_every_admin_page(
    client, two_factor_on, member
):
    response = log_in(client)
    assert response.status_code == 302
    assert response["Location"] == INDEX

    for page in (INDEX, ORDERS, PRODUCTS, USERS, f"{ORDERS}?status__exact=pending"):
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith(f"{ENROL}?next="), page


def test_the_enrolment_page_shows_a_qr_code_and_the_secret_of_a_new_authenticator(
    client, two_factor_on, member
):
    log_in(client)

    response = client.get(ENROL)

    assert response.status_code == 200
    device = pending_device(member)
    page = response.content.decode()
    assert re.search(r'<div class="qr-code" id="qr-code"><svg[^>]*>.*</svg></div>', page, re.S)
    secret = re.search(r'id="totp-secret">(\w+)<', page).group(1)
    assert b32decode(secret) == device.bin_key
    assert "cdn" not in page.lower() and "googleapis" not in page
    # A reload shows the same authenticator: a QR code already scanned stays good.
    client.get(ENROL)
    assert TOTPDevice.objects.filter(user=member).count() == 1


def test_a_wrong_code_does_not_confirm_the_new_authenticator(client, two_factor_on, member):
    log_in(client)
    client.get(ENROL)
    device = pending_device(member)

    response = client.post(ENROL, {"otp_token": wrong_code_for(device)})

    assert response.status_code == 200
    assert "That code is not valid" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert not StaticDevice.objects.filter(user=member).exists()
    assert client.get(INDEX)["Location"].startswith(ENROL)


def test_the_right_code_confirms_the_authenticator_and_shows_ten_backup_codes_once(
    client, two_factor_on, member
):
    log_in(client, next_url=ORDERS)
    client.get(ORDERS)
    client.get(ENROL)
    device = pending_device(member)

    response = client.post(f"{ENROL}?next={ORDERS}", {"otp_token": code_for(device)})

    assert response.status_code == 200
    codes = shown_backup_codes(response)
    assert len(codes) == 10
    assert sorted(codes) == sorted(
        StaticToken.objects.filter(device__user=member).values_list("token", flat=True)
    )
    assert f'id="continue" href="{ORDERS}"' in response.content.decode()
    device.refresh_from_db()
    assert device.confirmed
    # The member is in, on every page.
    assert client.get(INDEX).status_code == 200
    assert client.get(ORDERS).status_code == 200
    # And the codes are not shown again.
    again = client.get(ENROL)
    assert again.status_code == 302
    assert not any(code in client.get(INDEX).content.decode() for code in codes)


def test_the_enrolment_page_only_continues_to_this_site(client, two_factor_on, member):
    log_in(client)
    client.get(ENROL)
    device = pending_device(member)

    response = client.post(
        f"{ENROL}?next=https://evil.example/admin/", {"otp_token": code_for(device)}
    )

    assert f'id="continue" href="{INDEX}"' in response.content.decode()


def test_a_member_half_way_through_enrolment_can_log_out(client, two_factor_on, member):
    log_in(client)

    response = client.post(LOGOUT)

    assert response.status_code == 200
    assert not is_logged_in(client)
    assert client.get(INDEX)["Location"].startswith(LOGIN)


def test_a_member_with_a_device_cannot_enrol_another_without_a_code(
    client, two_factor_on, member, authenticator
):
    # A session that has the password but not the second factor (one from
    # before two-factor was turned on, say).
    client.force_login(member)

    response = client.get(ENROL)

    assert response.status_code == 302
    assert client.get(response["Location"])["Location"].startswith(LOGIN)
    assert not TOTPDevice.objects.filter(user=member, confirmed=False).exists()


def test_someone_not_staff_cannot_reach_the_enrolment_page(client, two_factor_on, user):
    client.force_login(user)

    response = client.get(ENROL)

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
    assert not TOTPDevice.objects.exists()


# --- Login with a code -----------------------------------------------------------------


def test_the_login_page_asks_for_a_code(client, two_factor_on):
    page = client.get(LOGIN).content.decode()

    assert 'name="otp_token"' in page
    assert 'autocomplete="one-time-code"' in page


def test_a_member_with_a_device_is_refused_without_a_code(
    client, two_factor_on, member, authenticator
):
    response = log_in(client)

    assert response.status_code == 200
    assert "Enter the code from your authenticator app" in response.content.decode()
    assert not is_logged_in(client)
    assert client.get(INDEX)["Location"].startswith(LOGIN)


def test_a_wrong_code_is_refused_at_login(client, two_factor_on, member, authenticator):
    response = log_in(client, code=wrong_code_for(authenticator))

    assert response.status_code == 200
    assert "That code is not valid" in response.content.decode()
    assert not is_logged_in(client)


def test_a_wrong_password_with_a_right_code_is_refused(
    client, two_factor_on, member, authenticator
):
    response = client.post(
        LOGIN,
        {"username": member.email, "password": "not-it", "otp_token": code_for(authenticator)},
    )

    assert response.status_code == 200
    assert not is_logged_in(client)


def test_a_member_logs_in_with_a_code_from_their_authenticator(
    client, two_factor_on, member, authenticator
):
    response = log_in(client, code=code_for(authenticator), next_url=ORDERS)

    assert response.status_code == 302
    assert response["Location"] == ORDERS
    assert client.get(ORDERS).status_code == 200
    assert client.get(INDEX).status_code == 200


def test_a_backup_code_works_once_and_not_twice(client, two_factor_on, member, backup_codes):
    code = backup_codes[3]

    assert log_in(client, code=code.upper()).status_code == 302
    assert client.get(INDEX).status_code == 200
    assert StaticToken.objects.filter(device__user=member).count() == 9

    client.post(LOGOUT)
    response = log_in(client, code=code)

    assert response.status_code == 200
    assert "That code is not valid" in response.content.decode()
    assert not is_logged_in(client)


# --- Reset -----------------------------------------------------------------------------


def test_reset_2fa_removes_the_devices_and_the_next_login_enrols_again(
    client, two_factor_on, member, backup_codes, authenticator
):
    log_in(client, code=code_for(authenticator))
    assert client.get(INDEX).status_code == 200
    out = io.StringIO()

    call_command("reset_2fa", "Sam@Example.com", stdout=out)

    assert "sam@example.com: removed 1 authenticator device(s) and 1 backup-code set(s)" in (
        out.getvalue()
    )
    assert not TOTPDevice.objects.filter(user=member).exists()
    assert not StaticDevice.objects.filter(user=member).exists()
    # The session the old device verified no longer counts.
    assert client.get(INDEX)["Location"].startswith(ENROL)
    client.post(LOGOUT)
    assert log_in(client).status_code == 302
    assert client.get(INDEX)["Location"].startswith(ENROL)


def test_reset_2fa_refuses_an_unknown_email(db):
    with pytest.raises(CommandError, match=re.escape("nobody@example.com")):
        call_command("reset_2fa", "nobody@example.com", stdout=io.StringIO())


# --- Devices in the admin, and two-factor off -------------------------------------------


def test_staff_see_devices_in_the_admin_without_their_secrets(
    client, two_factor_on, member, authenticator, backup_codes
):
    log_in(client, code=code_for(authenticator))

    devices = client.get(reverse("admin:otp_totp_totpdevice_changelist"))
    change = client.get(reverse("admin:otp_totp_totpdevice_change", args=[authenticator.pk]))
    backups = client.get(reverse("admin:otp_static_staticdevice_changelist"))
    backup = client.get(
        reverse("admin:otp_static_staticdevice_change", args=[member.staticdevice_set.get().pk])
    )

    assert devices.status_code == change.status_code == backups.status_code == 200
    assert "sam@example.com" in devices.content.decode()
    assert authenticator.key not in change.content.decode()
    assert backup.status_code == 200
    assert not any(code in backup.content.decode() for code in backup_codes)


def test_with_two_factor_off_none_of_this_applies(client, settings, member):
    settings.ADMIN_REQUIRE_2FA = False

    assert 'name="otp_token"' not in client.get(LOGIN).content.decode()
    assert log_in(client).status_code == 302
    assert client.get(INDEX).status_code == 200
    assert client.get(ENROL)["Location"] == INDEX
    client.logout()
    client.force_login(member)
    assert client.get(ORDERS).status_code == 200
    assert not TOTPDevice.objects.exists()
