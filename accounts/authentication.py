"""How API requests authenticate (SPEC §3, §4): a Bearer access JWT of a
session that has not ended, or `X-API-Key: <key>` acting as the key's user."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication

from . import services
from .tokens import STAMP_CLAIM, session_stamp

HEADER = "X-API-Key"


class SessionJWTAuthentication(JWTAuthentication):
    """simplejwt's Bearer authentication, which also refuses the access token
    of a session that has ended — by a password change, a deactivation or
    "log out everywhere" — at once, not when the token expires."""

    def get_user(self, validated_token):
        user = super().get_user(validated_token)  # exists and is active
        if validated_token.get(STAMP_CLAIM) != session_stamp(user):
            raise exceptions.AuthenticationFailed(
                "This session has ended (password changed, or logged out everywhere); "
                "log in again.",
                code="token_not_valid",
            )
        return user


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
