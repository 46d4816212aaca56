"""Domain errors and their mapping to the SPEC's error shape.

Services raise `DomainError` subclasses (or Django's ValidationError) and know
nothing of HTTP; `ExceptionHandler` below is the one place that turns them into
responses, for every API view.
"""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from drf_standardized_errors.handler import ExceptionHandler as BaseExceptionHandler
from rest_framework import exceptions, serializers

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A business rule refused the operation. Subclasses fix status and code."""

    status_code = 400
    code = "invalid"
    default_detail = "The request was refused."

    def __init__(
        self, detail: str | None = None, *, attr: str | None = None, code: str | None = None
    ):
        self.detail = detail or self.default_detail
        self.attr = attr
        if code:
            self.code = code
        super().__init__(self.detail)


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "service_unavailable"
    default_detail = "A service this request needs is unavailable; try again shortly."


class DatabaseUnavailable(ServiceUnavailable):
    """What a view's database error becomes: the database is unreachable, or
    refused the statement for a passing reason. The client may retry (503);
    it is no bug (500)."""

    default_detail = "The database is unavailable; try again shortly."
    wait = 5  # Retry-After


DATABASE_ERRORS = (OperationalError, InterfaceError)


class Throttled(DomainError):
    status_code = 429
    code = "throttled"
    default_detail = "Too many requests; try again later."

    def __init__(self, detail: str | None = None, *, wait: int | None = None):
        super().__init__(detail)
        self.wait = wait


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
