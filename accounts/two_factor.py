"""Staff two-factor devices (SPEC §11), kept by django-otp.

A member has one authenticator (a TOTPDevice, confirmed by the first code it
gives) and one set of ten backup codes (a StaticDevice; each code works
once). The back office's admin decides when they are needed
(backoffice/two_factor.py); these functions only look after the devices.
"""

from base64 import b32encode

from django.db import transaction
from django_otp import user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import User

BACKUP_CODE_COUNT = 10
AUTHENTICATOR_NAME = "Authenticator app"
BACKUP_CODES_NAME = "Backup codes"


def normalize_code(code: str | None) -> str:
    """A code as typed: apps show a TOTP code as "123 456", people copy backup
    codes in any case."""
    return "".join((code or "").split()).lower()


def has_confirmed_device(user: User) -> bool:
    return user_has_device(user, confirmed=True)


def pending_authenticator(*, user: User) -> TOTPDevice:
    """The member's authenticator still waiting for its first code, made on
    first use. The same one is shown again on a reload, so a QR code already
    scanned stays good."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


def base32_secret(device: TOTPDevice) -> str:
    """The secret as authenticator apps take it when typed in by hand."""
    return b32encode(device.bin_key).decode()


def confirm_authenticator(*, device: TOTPDevice, code: str) -> bool:
    """Confirm a pending authenticator with a code it made. A wrong code counts
    as a failed attempt (django-otp's throttling: 1 s, 2 s, 4 s... before the
    next try)."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if device.confirmed or not device.verify_token(normalize_code(code)):
            return False
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return True


def issue_backup_codes(*, user: User) -> list[str]:
    """Ten fresh backup codes in place of any the member had. Only the caller
    sees them: they are shown once."""
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    with transaction.atomic():
        device = StaticDevice.objects.filter(user=user).order_by("pk").first()
        if device is None:
            device = StaticDevice.objects.create(user=user, name=BACKUP_CODES_NAME)
        device.token_set.all().delete()
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def device_for_code(*, user: User, code: str) -> Device | None:
    """The one confirmed device a code is for: digits of the authenticator's
    length go to the authenticator, anything else to the backup codes. Trying
    a code on one device only keeps a mistyped TOTP code from counting as a
    failed attempt against the backup codes (and the other way round).

    Locks the device's row: call inside a transaction, so that two requests
    cannot spend the same code."""
    code = normalize_code(code)
    authenticator = (
        TOTPDevice.objects.devices_for_user(user, confirmed=True)
        .select_for_update()
        .order_by("pk")
        .first()
    )
    if authenticator and code.isdigit() and len(code) == authenticator.digits:
        return authenticator
    backup = (
        StaticDevice.objects.devices_for_user(user, confirmed=True)
        .select_for_update()
        .order_by("pk")
        .first()
    )
    return backup or authenticator


def reset_devices(*, user: User) -> dict[str, int]:
    """Remove all of a member's devices, so that they enrol again at their
    next admin login. Sessions they verified stop counting as verified (the
    device they name is gone). Returns how many of each kind went."""
    with transaction.atomic():
        unused_codes = StaticToken.objects.filter(device__user=user).count()
        authenticators, _ = TOTPDevice.objects.filter(user=user).delete()
        backup_sets = StaticDevice.objects.filter(user=user).count()
        StaticDevice.objects.filter(user=user).delete()
    return {
        "authenticators": authenticators,
        "backup_code_sets": backup_sets,
        "unused_backup_codes": unused_codes,
    }
