"""JWT pairs that end with the session they belong to (SPEC §4).

A login starts a session: a chain of refresh tokens, each refresh token
redeemed once for the next. Every token of the chain carries:

- `stamp`: an HMAC of the user's password hash and session epoch. A password
  change, a deactivation or "log out everywhere" changes it (the epoch is
  bumped by `accounts.services.user_end_sessions`), and from that moment every
  token and API key made before is refused — access tokens included, not
  only after they expire;
- `session_started`: when the login happened. No token of the chain lives
  past `JWT_SESSION_MAX_DAYS` after it, however often it is refreshed.

Tokens are simplejwt's, with these claims added; the outstanding and
blacklisted tables are simplejwt's too.
"""

from datetime import timedelta

from django.conf import settings
from django.utils.crypto import salted_hmac
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

STAMP_CLAIM = "stamp"
SESSION_STARTED_CLAIM = "session_started"


def session_stamp(user) -> str:
    """What a user's tokens and API keys must carry to be accepted; it changes
    when the password changes or the user's sessions are ended."""
    value = f"{user.pk}:{user.password}:{user.session_epoch}"
    return salted_hmac("accounts.session", value, algorithm="sha256").hexdigest()[:32]


def session_deadline(session_started: int) -> int:
    """The Unix time at which a session started at `session_started` ends."""
    return session_started + int(timedelta(days=settings.JWT_SESSION_MAX_DAYS).total_seconds())


class SessionAccessToken(AccessToken):
    pass


class SessionRefreshToken(RefreshToken):
    access_token_class = SessionAccessToken

    @classmethod
    def for_user(cls, user, *, session_started: int | None = None) -> "SessionRefreshToken":
        """A refresh token for `user`, in the session started at
        `session_started` (Unix time; now for a login). Recorded as
        outstanding, so that it can be blacklisted."""
        token = cls()
        token[api_settings.USER_ID_CLAIM] = str(getattr(user, api_settings.USER_ID_FIELD))
        token[STAMP_CLAIM] = session_stamp(user)
        started = int(session_started if session_started is not None else token["iat"])
        token[SESSION_STARTED_CLAIM] = started
        token.payload["exp"] = min(token.payload["exp"], session_deadline(started))
        OutstandingToken.objects.create(
            user=user,
            jti=token[api_settings.JTI_CLAIM],
            token=str(token),
            created_at=token.current_time,
            expires_at=datetime_from_epoch(token["exp"]),
        )
        return token

    @property
    def access_token(self) -> SessionAccessToken:
        access = super().access_token
        # An access token does not outlive its session either.
        access.payload["exp"] = min(access.payload["exp"], self.payload["exp"])
        return access
