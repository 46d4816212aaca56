"""The accounts app's refusals; `core.exception_handler.ExceptionHandler` maps them
to the SPEC's error shape."""

from core.exceptions import DomainError


class InvalidCode(DomainError):
    code = "invalid_code"
    default_detail = "The code is wrong or has expired."

    def __init__(self, detail=None):
        super().__init__(detail, attr="code")


class TooManyAttempts(DomainError):
    code = "too_many_attempts"
    default_detail = "Too many wrong codes. Request a new code."

    def __init__(self, detail=None):
        super().__init__(detail, attr="code")


class InactiveUser(DomainError):
    status_code = 401
    code = "user_inactive"
    default_detail = "This account is disabled."


class TokenNotOwned(DomainError):
    code = "token_not_valid"
    default_detail = "This refresh token does not belong to you."

    def __init__(self, detail=None):
        super().__init__(detail, attr="refresh")


class InvalidCredentials(DomainError):
    status_code = 401
    code = "authentication_failed"
    default_detail = "No active account found with the given credentials."
