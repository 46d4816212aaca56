"""How API requests authenticate (SPEC §3, §4): a Bearer access JWT of a
session that has not ended, or `X-API-Key: <key>` acting as the key's user."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

from . import auth_cache, services
from .tokens import STAMP_CLAIM, session_stamp

HEADER = "X-API-Key"


class SessionJWTAuthentication(JWTAuthentication):
    """simplejwt's Bearer authentication, which also refuses the access token
    of a session that has ended — by a password change, a deactivation or
    "log out everywhere" — at once, not when the token expires.

    A read (GET, HEAD, OPTIONS) takes the user from the Redis entry of
    `accounts.auth_cache` instead of the database, unless its view says
    `authenticate_from_cache = False` (it shows the user's own profile). A
    write reads the row, unless its view says `authenticate_writes_from_cache
    = True`: its writes never save the acting user (they may lock its row)."""

    reading = False

    def authenticate(self, request):
        view = (getattr(request, "parser_context", None) or {}).get("view")
        if request.method in permissions.SAFE_METHODS:
            self.reading = getattr(view, "authenticate_from_cache", True)
        else:
            self.reading = getattr(view, "authenticate_writes_from_cache", False)
        return super().authenticate(request)

    def get_user(self, validated_token):
        if self.reading:
            return self._cached_user(validated_token)
        user = super().get_user(validated_token)  # exists and is active
        self._check_stamp(validated_token, session_stamp(user))
        return user

    def _cached_user(self, validated_token):
        """What simplejwt's get_user checks, on the cached state."""
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        found = auth_cache.cached_user(user_id)
        if found is None:
            raise exceptions.AuthenticationFailed("User not found", code="user_not_found")
        user, stamp = found
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User is inactive", code="user_inactive")
        self._check_stamp(validated_token, stamp)
        return user

    @staticmethod
    def _check_stamp(validated_token, stamp: str) -> None:
        if validated_token.get(STAMP_CLAIM) != stamp:
            raise exceptions.AuthenticationFailed(
                "This session has ended (password changed, or logged out everywhere); "
                "log in again.",
                code="token_not_valid",
            )


class SessionJWTScheme(SimpleJWTScheme):
    target_class = "accounts.authentication.SessionJWTAuthentication"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        raw = request.headers.get(HEADER)
        if raw is None:
            return None
        api_key = services.api_key_authenticate(raw=raw.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return api_key.user, api_key

    def authenticate_header(self, request):
        return HEADER


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": HEADER,
            "description": "An API key made by staff in the admin; it acts as its user.",
        }
