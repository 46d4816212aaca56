"""OpenAPI descriptions of the errors drf-standardized-errors cannot infer:
the business-rule refusals (409, 422) that services raise."""

import functools
import re

from django.db import models
from drf_standardized_errors.openapi_serializers import ClientErrorEnum
from drf_standardized_errors.settings import package_settings
from rest_framework import serializers


@functools.cache
def client_error_response(status: int, *codes: str) -> type[serializers.Serializer]:
    """A response serializer for a client error with these codes, in the SPEC's
    error shape; use it in `@extend_schema(responses={status: ...})`."""
    suffix = "".join(part.title() for code in codes for part in code.split("_"))
    error = type(
        f"Error{status}{suffix}Serializer",
        (serializers.Serializer,),
        {
            "code": serializers.ChoiceField(choices=[(code, code) for code in codes]),
            "detail": serializers.CharField(),
            "attr": serializers.CharField(allow_null=True),
        },
    )
    return type(
        f"ErrorResponse{status}{suffix}Serializer",
        (serializers.Serializer,),
        {
            "type": serializers.ChoiceField(choices=ClientErrorEnum.choices),
            "errors": error(many=True),
        },
    )


def list_index_patterns(result, generator, request, public):
    """drf-standardized-errors names an error inside a list `items.INDEX.quantity`,
    as an enum value, while responses say `items.0.quantity`. Describe such
    attrs with a pattern instead, and drop the discriminator that maps
    `attr` values (no mapping can list every index)."""
    index = package_settings.LIST_INDEX_IN_API_SCHEMA
    schemas = result.get("components", {}).get("schemas", {})
    for schema in schemas.values():
        attr = schema.get("properties", {}).get("attr", {})
        values = attr.get("enum") or []
        if any(index in value.split(".") for value in values):
            del attr["enum"]
            alternatives = (re.escape(value).replace(index, r"\d+") for value in values)
            attr["pattern"] = f"^({'|'.join(alternatives)})$"
        discriminator = schema.get("discriminator", {})
        if discriminator.get("propertyName") == "attr" and any(
            index in key.split(".") for key in discriminator.get("mapping", {})
        ):
            del schema["discriminator"]
    return result


class ErrorCode401(models.TextChoices):
    """Every code a 401 can carry: DRF's two and simplejwt's."""

    AUTHENTICATION_FAILED = "authentication_failed"
    NOT_AUTHENTICATED = "not_authenticated"
    BAD_AUTHORIZATION_HEADER = "bad_authorization_header"
    TOKEN_NOT_VALID = "token_not_valid"  # noqa: S105 (an error code)
    USER_NOT_FOUND = "user_not_found"
    USER_INACTIVE = "user_inactive"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (an error code)


class Error401Serializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=ErrorCode401.choices)
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ErrorResponse401Serializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = Error401Serializer(many=True)
