from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.throttling import ClientScopedThrottle

from .. import services
from ..throttles import LoginAccountThrottle, OtpRecipientThrottle
from . import serializers as s


class AnonymousEndpoint(APIView):
    """Endpoints used before one has credentials: no authentication is read
    (a stale token must not block a login) and clients are throttled by address."""

    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ClientScopedThrottle]


@extend_validation_errors(
    [
        "password_too_similar",
        "password_too_short",
        "password_too_common",
        "password_entirely_numeric",
    ],
    field_name="password",
)
@extend_validation_errors(["unique"], field_name="email")
class RegisterView(AnonymousEndpoint):
    throttle_scope = "register"

    @extend_schema(
        request=s.RegisterSerializer,
        responses={201: s.UserSerializer},
        summary="Register a customer",
        tags=["auth"],
    )
    def post(self, request):
        serializer = s.RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        return Response(s.UserSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenObtainView(AnonymousEndpoint):
    throttle_classes = [ClientScopedThrottle, LoginAccountThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=s.LoginSerializer,
        responses={200: s.TokenPairSerializer},
        summary="Log in with e-mail and password",
        tags=["auth"],
    )
    def post(self, request):
        serializer = s.LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_authenticate(request=request, **serializer.validated_data)
        return Response(services.user_tokens(user=user))


class TokenRefreshView(AnonymousEndpoint):
    """A new access token and a rotated refresh token; the old refresh token is
    blacklisted and refused from then on (`services.token_refresh`)."""

    throttle_scope = "refresh"

    @extend_schema(
        request=s.RefreshSerializer,
        responses={200: s.TokenPairSerializer},
        summary="Refresh the token pair",
        tags=["auth"],
    )
    def post(self, request):
        serializer = s.RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(services.token_refresh(refresh=serializer.validated_data["refresh"]))

    def get_authenticate_header(self, request):
        # A refused refresh token is a 401 that says how to authenticate; DRF
        # would make it a 403 for a view that reads no credentials.
        return 'Bearer realm="api"'


@extend_validation_errors(["token_not_valid"], field_name="refresh")
class LogoutView(APIView):
    @extend_schema(
        request=s.RefreshSerializer,
        responses={204: OpenApiResponse(description="The refresh token is blacklisted.")},
        summary="Log out (blacklist a refresh token)",
        tags=["auth"],
    )
    def post(self, request):
        serializer = s.RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_logout(user=request.user, refresh=serializer.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="Every session of the user has ended.")},
        summary="Log out everywhere",
        description="Ends every session of the user at once: all their access and refresh "
        "tokens, this one included, and their API keys are refused from now on.",
        tags=["auth"],
    )
    def post(self, request):
        services.user_end_sessions(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_validation_errors(
    ["invalid", "phone_not_allowed", "unique", "required"], field_name="phone", methods=["patch"]
)
class MeView(APIView):
    # The whole profile is shown: read the user's row, not the cached state.
    authenticate_from_cache = False

    @extend_schema(responses={200: s.UserSerializer}, summary="The current user", tags=["auth"])
    def get(self, request):
        return Response(s.UserSerializer(request.user).data)

    @extend_schema(
        request=s.ProfileSerializer,
        responses={200: s.UserSerializer},
        summary="Edit the current user's profile",
        description="Names and phone. A phone is checked as for a login code by SMS "
        "(a mobile number in E.164; premium-rate, shared-cost and invalid numbers are refused) "
        "and is unique. The e-mail is not edited here.",
        tags=["auth"],
    )
    def patch(self, request):
        serializer = s.ProfileSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_update_profile(user=request.user, **serializer.validated_data)
        return Response(s.UserSerializer(user).data)


@extend_validation_errors(["required"], field_name="email")
@extend_validation_errors(["required", "invalid", "phone_not_allowed"], field_name="phone")
class OtpStartView(AnonymousEndpoint):
    throttle_classes = [ClientScopedThrottle, OtpRecipientThrottle]
    throttle_scope = "otp_start"

    @extend_schema(
        request=s.OtpStartSerializer,
        responses={200: s.OtpStartResponseSerializer},
        summary="Send a one-time login code by e-mail or SMS",
        description='Two shapes: `{"email"}` mails the code, `{"phone"}` texts it '
        "(SMS, E.164). Send exactly one of them. The answer is the same whether or not the "
        "recipient has an account (staff get no code).",
        examples=[
            OpenApiExample("By e-mail", value={"email": "customer@example.com"}, request_only=True),
            OpenApiExample("By SMS", value={"phone": "+14155550123"}, request_only=True),
        ],
        tags=["auth"],
    )
    def post(self, request):
        serializer = s.OtpStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        code = services.otp_start(**serializer.validated_data)
        # The same answer whether or not a code went out (a staff address gets
        # none): it does not tell who has an account or who is staff.
        body = {"detail": "A login code was sent.", "expires_in": settings.OTP_TTL_SECONDS}
        if settings.DEBUG and code is not None:
            body["dev_code"] = code
        return Response(body)


@extend_validation_errors(["invalid_code", "too_many_attempts"], field_name="code")
@extend_validation_errors(["required"], field_name="email")
@extend_validation_errors(["required", "invalid"], field_name="phone")
class OtpVerifyView(AnonymousEndpoint):
    # Guessing is bounded by each code's five tries; this bounds the traffic.
    throttle_scope = "otp_verify"

    @extend_schema(
        request=s.OtpVerifySerializer,
        responses={200: s.TokenPairSerializer},
        summary="Log in with a one-time code",
        description='`{"email", "code"}` or `{"phone", "code"}`: the recipient the '
        "code was sent to. The first login creates the customer (by SMS: with a phone and no "
        "e-mail).",
        examples=[
            OpenApiExample(
                "By e-mail",
                value={"email": "customer@example.com", "code": "123456"},
                request_only=True,
            ),
            OpenApiExample(
                "By SMS", value={"phone": "+14155550123", "code": "123456"}, request_only=True
            ),
        ],
        tags=["auth"],
    )
    def post(self, request):
        serializer = s.OtpVerifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.otp_verify(**serializer.validated_data)
        return Response(services.user_tokens(user=user))
