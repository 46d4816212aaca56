"""Staff two-factor in the admin (SPEC §11): when it applies, the login form
that asks for the code, and the enrolment of a member's first device.

The devices themselves are accounts.two_factor's; the admin site
(backoffice/admin.py) routes requests here.
"""

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django_otp import login as otp_login
from django_otp.forms import OTPAuthenticationFormMixin
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import two_factor as devices

CODE_HELP = "The 6-digit code from your authenticator app, or one of your backup codes."


def required() -> bool:
    """Read per request, so that a test (or a settings change) takes effect."""
    return settings.ADMIN_REQUIRE_2FA


def must_enrol(request) -> bool:
    """A staff member who has given a password but has no device yet: every
    admin page sends them to enrol first."""
    user = request.user
    return (
        required()
        and user.is_active
        and user.is_staff
        and not user.is_verified()
        and not devices.has_confirmed_device(user)
    )


def safe_next(request, *, default: str) -> str:
    """Where to go once enrolled: the page the member asked for, if it is on
    this site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and allowed else default


def qr_code_svg(data: str) -> SafeString:
    """An inline SVG QR code, made here: the secret never leaves the server."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return mark_safe(image.to_string(encoding="unicode"))  # noqa: S308 (our own markup)


class TwoFactorLoginForm(OTPAuthenticationFormMixin, AdminAuthenticationForm):
    """The admin's login form. With two-factor on, a member who has a device
    gives a code with the password; one without a device gets in with the
    password alone, and only as far as the enrolment page. django-otp checks
    the code (throttling, one use per code); this form only picks the device
    the code is for, so there is no device to choose in the form."""

    # Optional: a member without a device leaves it empty and enrols next.
    otp_token = forms.CharField(
        label="Authentication code",
        required=False,
        max_length=32,
        help_text=CODE_HELP,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )

    otp_error_messages = {
        **OTPAuthenticationFormMixin.otp_error_messages,
        "token_required": "Enter the code from your authenticator app, or a backup code.",
        "invalid_token": "That code is not valid. Check it and try again.",
        "device_required": "That code is not valid. Check it and try again.",
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        if not required():
            del self.fields["otp_token"]

    def clean_otp_token(self):
        # django-otp compares the code as given: "123 456" or "ABCD2345"
        # would not match.
        return devices.normalize_code(self.cleaned_data["otp_token"])

    def clean(self):
        cleaned_data = super().clean()
        user = self.get_user()
        if required() and user is not None and devices.has_confirmed_device(user):
            self.clean_otp(user)
        return cleaned_data

    def _chosen_device(self, user):
        return devices.device_for_code(user=user, code=self.cleaned_data.get("otp_token"))


class EnrolForm(forms.Form):
    """The first code from a new authenticator, which confirms it."""

    otp_token = forms.CharField(
        label="Code from the app",
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def __init__(self, *args, device: TOTPDevice, **kwargs):
        super().__init__(*args, **kwargs)
        self.device = device

    def clean_otp_token(self):
        code = self.cleaned_data["otp_token"]
        if not devices.confirm_authenticator(device=self.device, code=code):
            raise forms.ValidationError(
                "That code is not valid. Check the time on your phone, wait for the next "
                "code and try again.",
                code="invalid_token",
            )
        return code


def finish_enrolment(request, *, device: TOTPDevice) -> list[str]:
    """The authenticator is confirmed: this session counts as verified by it,
    and the member gets their backup codes (to be shown once)."""
    codes = devices.issue_backup_codes(user=request.user)
    # A new session key for the session that gained the second factor, as
    # Django's login() does for the first.
    request.session.cycle_key()
    otp_login(request, device)
    return codes
