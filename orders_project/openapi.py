"""OpenAPI descriptions of the errors drf-standardized-errors cannot infer:
the business-rule refusals (409, 422) that services raise."""

import functools

from drf_standardized_errors.openapi_serializers import ClientErrorEnum
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
