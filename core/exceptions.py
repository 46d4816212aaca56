"""Domain errors: what services raise when a business rule refuses.

Services raise `DomainError` subclasses (or Django's ValidationError) and know
nothing of HTTP; `core.exception_handler.ExceptionHandler` is the one place
that turns them into responses of the SPEC's error shape, for every API view.
Each app keeps its own subclasses in its `exceptions.py`.
"""

from django.db import InterfaceError, OperationalError


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


class PermissionRefused(DomainError):
    """The actor lacks the permission a rule asks for (403)."""

    status_code = 403
    code = "permission_denied"
    default_detail = "You do not have permission to perform this action."
