"""The API's exception handler: domain errors, Django validation errors and
database outages in the SPEC's error shape (drf-standardized-errors)."""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_standardized_errors.handler import ExceptionHandler as BaseExceptionHandler
from rest_framework import exceptions, serializers

from .exceptions import DATABASE_ERRORS, DatabaseUnavailable, DomainError

logger = logging.getLogger(__name__)


class _DomainAPIException(exceptions.APIException):
    def __init__(self, error: DomainError):
        self.status_code = error.status_code
        self.wait = getattr(error, "wait", None)
        if error.status_code == 401:
            # A 401 must say how to authenticate (RFC 9110).
            self.auth_header = 'Bearer realm="api"'
        detail = {error.attr: [error.detail]} if error.attr else error.detail
        super().__init__(detail=detail, code=error.code)


class ExceptionHandler(BaseExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, DomainError):
            if exc.attr and exc.status_code == 400:
                # A 400 about one field reads like any other validation error.
                return serializers.ValidationError({exc.attr: [exc.detail]}, code=exc.code)
            return _DomainAPIException(exc)
        if isinstance(exc, DjangoValidationError):
            return serializers.ValidationError(serializers.as_serializer_error(exc))
        if isinstance(exc, DATABASE_ERRORS):
            logger.error("Database unavailable: %s", exc)
            return _DomainAPIException(DatabaseUnavailable())
        if (
            isinstance(exc, exceptions.APIException)
            and not isinstance(exc, exceptions.ValidationError)
            and isinstance(exc.detail, dict)
            and "detail" in exc.detail
        ):
            # simplejwt's InvalidToken carries {"detail", "code", "messages"}:
            # one error, not one per key.
            return _reissue(exc, str(exc.detail["detail"]), str(exc.detail.get("code", "")))
        return super().convert_known_exceptions(exc)

    def report_exception(self, exc, response) -> None:
        # A 503 is a dependency that is down (database, mail), logged where it
        # was seen, not a bug: no traceback, no error-tracking signal.
        if response.status_code != 503:
            super().report_exception(exc, response)


def _reissue(exc: exceptions.APIException, detail: str, code: str) -> exceptions.APIException:
    new = exceptions.APIException(detail=detail, code=code or exc.default_code)
    new.status_code = exc.status_code
    new.auth_header = getattr(exc, "auth_header", None)
    return new
