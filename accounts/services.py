"""Account rules: registration, tokens, one-time codes and API keys.

The API views and the admin call these; nothing else writes these models.
"""

import hashlib
import logging
import secrets
import smtplib
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from core.db import delete_in_batches, lock_name
from core.exceptions import DomainError, PermissionRefused, ServiceUnavailable, Throttled

from . import auth_cache, lockout
from .addresses import validate_email_address
from .exceptions import (
    InactiveUser,
    InvalidCode,
    InvalidCredentials,
    TokenNotOwned,
    TooManyAttempts,
)
from .models import ApiKey, OneTimeCode, User
from .phones import INVALID as PHONE_INVALID
from .phones import normalize_phone, validate_sms_phone
from .sms import sms_queue
from .tokens import (
    SESSION_STARTED_CLAIM,
    STAMP_CLAIM,
    SessionRefreshToken,
    session_deadline,
    session_stamp,
)

logger = logging.getLogger(__name__)

# Codes an e-mail address may be sent in an hour; a phone's is
# OTP_SMS_STARTS_PER_HOUR, lower: every text costs money.
OTP_STARTS_PER_HOUR = 10


# --- Users and tokens ------------------------------------------------------------


def email_taken_error() -> ValidationError:
    return ValidationError(
        {"email": ValidationError("A user with this e-mail address already exists.", code="unique")}
    )


def user_register(*, email: str, password: str, first_name: str = "", last_name: str = "") -> User:
    """Create a customer. Django's password validators apply; an e-mail is
    taken whatever its case."""
    try:
        validate_email_address(email)
    except ValidationError as exc:
        raise ValidationError({"email": exc.error_list}) from exc
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
    """A fresh JWT pair for the user: a login, which starts a session."""
    refresh = SessionRefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def _refresh_refused(detail: str, code: str = "token_not_valid") -> AuthenticationFailed:
    return AuthenticationFailed(detail, code=code)


def token_refresh(*, refresh: str) -> dict[str, str]:
    """Redeem a refresh token for the next pair of its session.

    A refresh token is redeemed once: its outstanding row is locked and it is
    blacklisted in the same transaction that makes the next one, so two
    refreshes of one token at the same moment give one new pair, not two.
    Refused (401) when the token is invalid, expired or already used, when its
    user is gone or inactive, when the user's sessions were ended or the
    password changed since, and when the session is older than
    JWT_SESSION_MAX_DAYS."""
    try:
        token = SessionRefreshToken(refresh)
    except TokenError as exc:
        raise InvalidToken(exc.args[0]) from exc
    user = User.objects.filter(pk=token.get(api_settings.USER_ID_CLAIM)).first()
    if user is None:
        raise _refresh_refused("The user of this token no longer exists.", "user_not_found")
    if not user.is_active:
        raise _refresh_refused("No active account found for this token.", "no_active_account")
    if token.get(STAMP_CLAIM) != session_stamp(user):
        raise _refresh_refused("This session has ended (password changed, or logged out).")
    started = token.get(SESSION_STARTED_CLAIM)
    if started is None or time.time() >= session_deadline(started):
        raise _refresh_refused("This session is too old to refresh; log in again.")
    with transaction.atomic():
        outstanding = (
            OutstandingToken.objects.select_for_update(of=("self",))
            .filter(jti=token[api_settings.JTI_CLAIM])
            .order_by()
            .first()
        )
        if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
            raise _refresh_refused("This refresh token was already used or revoked.")
        BlacklistedToken.objects.create(token=outstanding)
        new = SessionRefreshToken.for_user(user, session_started=started)
    return {"access": str(new.access_token), "refresh": str(new)}


def user_logout(*, user: User, refresh: str) -> None:
    """Blacklist the user's refresh token: it can no longer be refreshed."""
    try:
        token = SessionRefreshToken(refresh)
    except TokenError as exc:
        raise InvalidToken(exc.args[0]) from exc
    if str(token.get(api_settings.USER_ID_CLAIM)) != str(user.pk):
        raise TokenNotOwned()
    token.blacklist()


def user_end_sessions(*, user: User) -> User:
    """End every session of the user at once ("log out everywhere", and a
    deactivation): each access and refresh token made so far is refused from
    now on, and so is each API key of the user (revoked). A password change
    does the same by itself, through the session stamp."""
    User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
    auth_cache.users_changed([user.pk])  # an UPDATE: no post_save to hear of it
    user.refresh_from_db(fields=["session_epoch"])
    ApiKey.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    logger.info("Ended every session of user %s", user.pk)
    return user


PROFILE_FIELDS = frozenset({"first_name", "last_name", "phone"})


def phone_taken_error() -> ValidationError:
    return ValidationError(
        {"phone": ValidationError("A user with this phone number already exists.", code="unique")}
    )


def user_update_profile(*, user: User, **changes) -> User:
    """Edit the user's own profile (`PATCH /auth/me/`): `first_name`,
    `last_name`, `phone`. The e-mail, the login for a password, is not
    edited here.

    A phone must pass the rules for a number codes are texted to
    (`accounts.phones`), since it is a way to sign in, and is unique. A user
    without an e-mail cannot remove their phone: it is their only way in.
    The new phone is not re-verified by a code (see the README)."""
    unknown = set(changes) - PROFILE_FIELDS
    if unknown:
        raise TypeError(f"Not profile fields: {', '.join(sorted(unknown))}")
    if "phone" in changes:
        phone = changes["phone"]
        if phone in (None, ""):
            if not user.email:
                raise ValidationError(
                    {
                        "phone": ValidationError(
                            "Your phone is your only way to sign in; it cannot be removed.",
                            code="required",
                        )
                    }
                )
            phone = None
        else:
            try:
                phone = validate_sms_phone(phone)
            except ValidationError as exc:
                raise ValidationError({"phone": exc.error_list}) from exc
            if User.objects.filter(phone=phone).exclude(pk=user.pk).exists():
                raise phone_taken_error()
        changes["phone"] = phone
    if not changes:
        return user
    for name, value in changes.items():
        setattr(user, name, value)
    try:
        with transaction.atomic():
            user.save(update_fields=sorted(changes))
    except IntegrityError as exc:  # a concurrent change took the phone first
        user.refresh_from_db(fields=sorted(changes))
        raise phone_taken_error() from exc
    return user


# --- One-time codes (passwordless login) -----------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """Where a one-time code goes: an e-mail address, or a phone (E.164).
    `field` names the column of `User` and of `OneTimeCode` alike, so one set
    of rules serves both channels."""

    field: str  # "email" or "phone"
    address: str

    @property
    def lookup(self) -> dict[str, str]:
        return {self.field: self.address}

    @property
    def is_phone(self) -> bool:
        return self.field == "phone"

    @property
    def starts_per_hour(self) -> int:
        return settings.OTP_SMS_STARTS_PER_HOUR if self.is_phone else OTP_STARTS_PER_HOUR

    @property
    def noun(self) -> str:
        return "number" if self.is_phone else "address"


def _one_of(email: str | None, phone: str | None) -> None:
    if email is not None and phone is not None:
        raise ValidationError(
            {
                "phone": ValidationError(
                    "Send an e-mail address or a phone number, not both.", code="invalid"
                )
            }
        )
    if email is None and phone is None:
        missing = ValidationError("Send an e-mail address or a phone number.", code="required")
        raise ValidationError({"email": missing, "phone": missing})


def otp_recipient(*, email: str | None = None, phone: str | None = None) -> Recipient:
    """The recipient a code may be sent to, in canonical form: exactly one of
    `email` and `phone`; an address that could pass for another is refused
    (`accounts.addresses`), and so is a phone codes may not be texted to
    (invalid, premium rate and the like, or outside SMS_ALLOWED_COUNTRIES:
    `accounts.phones`)."""
    _one_of(email, phone)
    if phone is not None:
        try:
            return Recipient("phone", validate_sms_phone(phone))
        except ValidationError as exc:
            raise ValidationError({"phone": exc.error_list}) from exc
    try:
        validate_email_address(email)
    except ValidationError as exc:
        raise ValidationError({"email": exc.error_list}) from exc
    return Recipient("email", User.objects.normalize_email(email))


def _otp_recipient_to_check(email: str | None, phone: str | None) -> Recipient:
    """The recipient a code is checked for: canonical form only (a code was
    made only for a recipient that passed `otp_recipient`)."""
    _one_of(email, phone)
    if phone is None:
        address = User.objects.normalize_email(email)
        if not address:  # "" would be the e-mail column of every phone's code
            raise ValidationError({"email": ValidationError("Enter an e-mail address.", "blank")})
        return Recipient("email", address)
    normalized = normalize_phone(phone)
    if normalized is None:
        raise ValidationError({"phone": ValidationError(PHONE_INVALID, code="invalid")})
    return Recipient("phone", normalized)


def _otp_hash(recipient: Recipient, code: str) -> str:
    value = f"{recipient.field}:{recipient.address}:{code}"
    return salted_hmac("accounts.otp", value, algorithm="sha256").hexdigest()


def _otp_failures_today(recipient: Recipient, now) -> int:
    """Wrong codes tried for the recipient over the last 24 hours, all codes together."""
    return OneTimeCode.objects.filter(
        **recipient.lookup, created_at__gte=now - timedelta(days=1)
    ).aggregate(failures=Sum("attempts", default=0))["failures"]


def _otp_refused_for_staff(recipient: Recipient) -> bool:
    """Staff sign in with their password (and second factor), never a code."""
    return User.objects.filter(**recipient.lookup, is_staff=True).exists()


def otp_start(*, email: str | None = None, phone: str | None = None) -> str | None:
    """Make a 6-digit code for the e-mail address or the phone (exactly one),
    send it, and return it (the view echoes it only in DEBUG). A new code
    replaces any earlier one. A mail goes out at once; a text is queued in
    the SMS outbox in the code's transaction and sent by a worker after
    commit (`accounts.sms`), so a provider that is slow or down never holds
    the request.

    Bounds, per recipient: at most OTP_STARTS_PER_HOUR codes an hour for an
    address, OTP_SMS_STARTS_PER_HOUR for a phone (counted under a lock, so
    concurrent requests cannot all pass the count), and no new code once
    OTP_MAX_FAILURES_PER_DAY wrong codes were tried in 24 hours (a new code
    does not buy new guesses). A staff member's address or phone gets no code
    and nothing is sent — and the answer is the same, so it does not tell who
    is staff; None is returned."""
    recipient = otp_recipient(email=email, phone=phone)
    if _otp_refused_for_staff(recipient):
        logger.warning("One-time code refused for a staff %s", recipient.noun)
        return None
    code = f"{secrets.randbelow(10**6):06d}"
    ttl = settings.OTP_TTL_SECONDS
    context = {"code": code, "minutes": ttl // 60}
    with transaction.atomic():
        lock_name(f"otp:{recipient.field}:{recipient.address}")
        now = timezone.now()
        recent = OneTimeCode.objects.filter(
            **recipient.lookup, created_at__gte=now - timedelta(hours=1)
        )
        if recent.count() >= recipient.starts_per_hour:
            raise Throttled(
                f"Too many codes requested for this {recipient.noun}; try again later.",
                wait=3600,
            )
        if _otp_failures_today(recipient, now) >= settings.OTP_MAX_FAILURES_PER_DAY:
            raise Throttled(
                f"Too many wrong codes for this {recipient.noun} today; try again tomorrow"
                + (" or log in with a password." if not recipient.is_phone else "."),
                wait=24 * 3600,
            )
        OneTimeCode.objects.filter(**recipient.lookup, used_at__isnull=True).update(used_at=now)
        expires_at = now + timedelta(seconds=ttl)
        OneTimeCode.objects.create(
            **recipient.lookup, code_hash=_otp_hash(recipient, code), expires_at=expires_at
        )
        if recipient.is_phone:
            sms_queue(
                phone=recipient.address,
                body=render_to_string("sms/otp_code.txt", context).strip(),
                expires_at=expires_at,
            )
    if not recipient.is_phone:
        try:
            send_mail(
                subject=render_to_string("emails/otp_code_subject.txt", context).strip(),
                message=render_to_string("emails/otp_code.txt", context),
                from_email=None,
                recipient_list=[recipient.address],
            )
        except (OSError, smtplib.SMTPException) as exc:
            logger.error("Could not send a login code to %s: %s", recipient.address, exc)
            raise ServiceUnavailable(
                "The login code could not be sent; try again shortly."
            ) from exc
    return code


def otp_verify(*, code: str, email: str | None = None, phone: str | None = None) -> User:
    """Check a code sent to the e-mail address or the phone, and return its
    user, created on first login (a phone's customer has no e-mail yet). A
    code allows OTP_MAX_ATTEMPTS tries; after that even the right code is
    refused, and so is every code once the recipient has had
    OTP_MAX_FAILURES_PER_DAY wrong tries in 24 hours. Staff cannot sign in
    with a code."""
    recipient = _otp_recipient_to_check(email, phone)
    error: DomainError | None = None
    with transaction.atomic():
        otp = (
            OneTimeCode.objects.select_for_update()
            .filter(**recipient.lookup, used_at__isnull=True, expires_at__gt=timezone.now())
            .order_by("-created_at")
            .first()
        )
        if otp is None or _otp_refused_for_staff(recipient):
            error = InvalidCode()
        elif otp.attempts >= settings.OTP_MAX_ATTEMPTS or (
            _otp_failures_today(recipient, timezone.now()) >= settings.OTP_MAX_FAILURES_PER_DAY
        ):
            error = TooManyAttempts()
        elif not constant_time_compare(otp.code_hash, _otp_hash(recipient, code)):
            # Counted in this transaction, which commits: the error is raised after it.
            OneTimeCode.objects.filter(pk=otp.pk).update(attempts=F("attempts") + 1)
            error = InvalidCode()
        else:
            otp.used_at = timezone.now()
            otp.save(update_fields=["used_at"])
            user, created = User.objects.get_or_create(**recipient.lookup)
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


def api_key_create(*, user: User, name: str, created_by: User | None = None) -> tuple[ApiKey, str]:
    """Make a key for `user`, asked by `created_by` (None: the system, e.g. a
    command). Returns the stored key and the raw key, which is shown once
    and never again.

    A key acts as its user, so it never holds more power than the member
    who made it: only a superuser makes keys for someone else; any other
    member only for themself."""
    if created_by is not None and created_by.pk != user.pk and not created_by.is_superuser:
        raise PermissionRefused("Only a superuser may make an API key for another user.")
    prefix = secrets.token_hex(API_KEY_PREFIX_LENGTH // 2)
    raw = f"{prefix}.{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        key_hash=_api_key_hash(raw),
        stamp=session_stamp(user),
        created_by=created_by,
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
    if api_key is None or api_key.stamp != session_stamp(api_key.user):
        return None  # unknown, revoked, or made before a password change / end of sessions
    now = timezone.now()
    # Recording each use would be a write per request; a coarse stamp is enough.
    if api_key.last_used_at is None or now - api_key.last_used_at > _LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def user_authenticate(*, email: str, password: str, request) -> User:
    """The active user with these credentials, or InvalidCredentials.

    Each failure counts toward the brute-force lock of this (account, client
    address) pair that the admin's login shares (django-axes, SPEC §11). A
    locked pair is refused with Throttled (429, Retry-After until the lock
    ends) whatever the password; so is the failure that locks it."""
    # Axes keeps its verdict on the request, and AxesMiddleware looks for it
    # on Django's HttpRequest, not on DRF's wrapper around it.
    http_request = getattr(request, "_request", request)
    user = authenticate(http_request, email=email, password=password)
    if user is None:
        if getattr(http_request, "axes_locked_out", False):
            wait = lockout.seconds_until_unlocked(http_request, {"email": email})
            raise Throttled(lockout.lockout_message(wait), wait=wait)
        raise InvalidCredentials()
    return user
