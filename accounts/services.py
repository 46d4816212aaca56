"""Account rules: registration, tokens, one-time codes and API keys.

The API views and the admin call these; nothing else writes these models.
"""

import hashlib
import logging
import secrets
import smtplib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from core.db import delete_in_batches
from core.exceptions import DomainError, ServiceUnavailable, Throttled

from .exceptions import (
    InactiveUser,
    InvalidCode,
    InvalidCredentials,
    TokenNotOwned,
    TooManyAttempts,
)
from .models import ApiKey, OneTimeCode, User

logger = logging.getLogger(__name__)

OTP_STARTS_PER_HOUR = 10


# --- Users and tokens ------------------------------------------------------------


def email_taken_error() -> ValidationError:
    return ValidationError(
        {"email": ValidationError("A user with this e-mail address already exists.", code="unique")}
    )


def user_register(*, email: str, password: str, first_name: str = "", last_name: str = "") -> User:
    """Create a customer. Django's password validators apply; an e-mail is
    taken whatever its case."""
    user = User(
        email=User.objects.normalize_email(email), first_name=first_name, last_name=last_name
    )
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.error_list}) from exc
    if User.objects.filter(email=user.email).exists():
        raise email_taken_error()
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise email_taken_error() from exc
    return user


def user_tokens(*, user: User) -> dict[str, str]:
    """A fresh JWT pair for the user."""
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def user_logout(*, user: User, refresh: str) -> None:
    """Blacklist the user's refresh token: it can no longer be refreshed."""
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise InvalidToken(exc.args[0]) from exc
    if str(token.get(settings.SIMPLE_JWT["USER_ID_CLAIM"])) != str(user.pk):
        raise TokenNotOwned()
    token.blacklist()


# --- One-time codes (passwordless login) -----------------------------------------------


def _otp_hash(email: str, code: str) -> str:
    return salted_hmac("accounts.otp", f"{email}:{code}", algorithm="sha256").hexdigest()


def otp_start(*, email: str) -> str:
    """Make a 6-digit code for the address, mail it, and return it (the view
    echoes it only in DEBUG). A new code replaces any earlier one."""
    email = User.objects.normalize_email(email)
    now = timezone.now()
    recent = OneTimeCode.objects.filter(email=email, created_at__gte=now - timedelta(hours=1))
    if recent.count() >= OTP_STARTS_PER_HOUR:
        raise Throttled("Too many codes requested for this address; try again later.", wait=3600)

    code = f"{secrets.randbelow(10**6):06d}"
    ttl = settings.OTP_TTL_SECONDS
    with transaction.atomic():
        OneTimeCode.objects.filter(email=email, used_at__isnull=True).update(used_at=now)
        OneTimeCode.objects.create(
            email=email, code_hash=_otp_hash(email, code), expires_at=now + timedelta(seconds=ttl)
        )
    context = {"code": code, "minutes": ttl // 60}
    try:
        send_mail(
            subject=render_to_string("emails/otp_code_subject.txt", context).strip(),
            message=render_to_string("emails/otp_code.txt", context),
            from_email=None,
            recipient_list=[email],
        )
    except (OSError, smtplib.SMTPException) as exc:
        logger.error("Could not send a login code to %s: %s", email, exc)
        raise ServiceUnavailable("The login code could not be sent; try again shortly.") from exc
    return code


def otp_verify(*, email: str, code: str) -> User:
    """Check a code and return its user, created on first login. A code
    allows OTP_MAX_ATTEMPTS tries; after that even the right code is refused."""
    email = User.objects.normalize_email(email)
    error: DomainError | None = None
    with transaction.atomic():
        otp = (
            OneTimeCode.objects.select_for_update()
            .filter(email=email, used_at__isnull=True, expires_at__gt=timezone.now())
            .order_by("-created_at")
            .first()
        )
        if otp is None:
            error = InvalidCode()
        elif otp.attempts >= settings.OTP_MAX_ATTEMPTS:
            error = TooManyAttempts()
        elif not constant_time_compare(otp.code_hash, _otp_hash(email, code)):
            # Counted in this transaction, which commits: the error is raised after it.
            OneTimeCode.objects.filter(pk=otp.pk).update(attempts=F("attempts") + 1)
            error = InvalidCode()
        else:
            otp.used_at = timezone.now()
            otp.save(update_fields=["used_at"])
            user, created = User.objects.get_or_create(email=email)
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
    if error is not None:
        raise error
    if not user.is_active:
        raise InactiveUser()
    return user


def otp_delete_expired() -> int:
    """Housekeeping: drop codes that can no longer be used."""
    return delete_in_batches(OneTimeCode.objects.filter(expires_at__lt=timezone.now()))


def tokens_delete_expired() -> int:
    """Housekeeping: drop refresh tokens past their expiry from simplejwt's
    outstanding list, with their blacklist entries (`flushexpiredtokens`, in batches)."""
    return delete_in_batches(OutstandingToken.objects.filter(expires_at__lte=timezone.now()))


# --- API keys ---------------------------------------------------------------------

API_KEY_PREFIX_LENGTH = 8
_LAST_USED_RESOLUTION = timedelta(minutes=5)


def _api_key_hash(raw: str) -> str:
    # The key carries 256 random bits, so a plain digest cannot be reversed by
    # guessing; a slow password hash would cost every request a lot for nothing.
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_create(*, user: User, name: str) -> tuple[ApiKey, str]:
    """Make a key for the user. Returns the stored key and the raw key, which
    is shown once and never again."""
    prefix = secrets.token_hex(API_KEY_PREFIX_LENGTH // 2)
    raw = f"{prefix}.{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        user=user, name=name, prefix=prefix, key_hash=_api_key_hash(raw)
    )
    return api_key, raw


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key; it authenticates nothing from now on."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_authenticate(*, raw: str) -> ApiKey | None:
    """The active key matching `raw`, with its active user, or None."""
    if not raw or len(raw) > 200:
        return None
    api_key = (
        ApiKey.objects.select_related("user")
        .filter(key_hash=_api_key_hash(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if api_key is None:
        return None
    now = timezone.now()
    # Recording each use would be a write per request; a coarse stamp is enough.
    if api_key.last_used_at is None or now - api_key.last_used_at > _LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def user_authenticate(*, email: str, password: str, request=None) -> User:
    """The active user with these credentials, or InvalidCredentials."""
    user = authenticate(request, email=email, password=password)
    if user is None:
        raise InvalidCredentials()
    return user
