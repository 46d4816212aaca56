"""One error shape for every 4xx and 5xx (SPEC §3).

DRF views get it from drf-standardized-errors (the EXCEPTION_HANDLER setting).
Everything Django answers outside DRF -- an unknown URL, a body too large, a
CSRF failure, an exception in a middleware, a 500 in DEBUG -- goes through
`JsonErrorMiddleware`, which rewrites any error response that is not already
JSON into the same shape, so no client ever sees an HTML error page.
"""

import logging
from collections.abc import Iterable

from django.http import JsonResponse

logger = logging.getLogger(__name__)

# Codes for errors Django raises by itself, by status.
_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "error",
    502: "bad_gateway",
    503: "service_unavailable",
}
_DETAILS = {
    400: "Bad request.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "The request body is too large.",
    500: "A server error occurred.",
    503: "The service is temporarily unavailable.",
}


def error_document(errors: Iterable[tuple[str, str, str | None]], *, status: int) -> dict:
    """The SPEC's error document for `(code, detail, attr)` errors."""
    return {
        "type": "server_error" if status >= 500 else "client_error",
        "errors": [{"code": code, "detail": detail, "attr": attr} for code, detail, attr in errors],
    }


def error_body(code: str, detail: str, attr: str | None = None, *, status: int) -> dict:
    """The SPEC's error document for one error."""
    return error_document([(code, detail, attr)], status=status)


def error_response(
    status: int,
    code: str | None = None,
    detail: str | None = None,
    attr: str | None = None,
    **extra,
) -> JsonResponse:
    code = code or _CODES.get(status, "error")
    detail = detail or _DETAILS.get(status, "Error.")
    return JsonResponse({**error_body(code, detail, attr, status=status), **extra}, status=status)


# Headers that describe the body being replaced, not the response.
BODY_HEADERS = {"content-type", "content-length", "content-language", "content-disposition"}


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


# A refusal inside the admin, seen by a staff member, is a page of the admin
# (with its header, breadcrumbs and a way back), not a JSON document.
ADMIN_PAGE_STATUSES = {403: "Permission denied", 404: "Not found"}


def _in_admin(request) -> bool:
    from django.urls import NoReverseMatch, reverse

    try:
        prefix = reverse("admin:index")
    except NoReverseMatch:  # no admin in this project's URLs
        return False
    user = getattr(request, "user", None)
    return request.path.startswith(prefix) and bool(user and user.is_active and user.is_staff)


def admin_error_page(request, status: int, detail: str | None = None):
    """The admin's own page for a refusal (403) or a missing page (404)."""
    from django.contrib import admin
    from django.template.response import TemplateResponse

    context = {
        **admin.site.each_context(request),
        "title": ADMIN_PAGE_STATUSES.get(status, "Error"),
        "detail": detail or _DETAILS.get(status, "Error."),
    }
    return TemplateResponse(request, "admin/refused.html", context, status=status).render()


class JsonErrorMiddleware:
    """Rewrites non-JSON error responses (Django's own 400/403/404/413/500
    pages, debug pages included) into the SPEC's error shape. Inside the
    admin, a 403 or 404 for a staff member is an admin page instead."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 400 or _is_json(response) or response.streaming:
            return response
        # An error page made for people on purpose (the admin's login when
        # locked out) says `keep_html`.
        if getattr(response, "keep_html", False):
            return response
        if response.status_code in ADMIN_PAGE_STATUSES and _in_admin(request):
            return admin_error_page(request, response.status_code)
        rewritten = error_response(response.status_code)
        # Every header but the body's own: Allow, Retry-After, WWW-Authenticate,
        # CORS, Vary, and what inner middleware set for security.
        for header, value in response.items():
            if header.lower() not in BODY_HEADERS:
                rewritten[header] = value
        return rewritten

    def process_exception(self, request, exception):
        # Only exceptions from views reach here. Django would log them and
        # render an HTML page (a traceback in DEBUG); log with the request id
        # and answer JSON instead. Http404/PermissionDenied/SuspiciousOperation
        # keep Django's handling (their status codes), then get rewritten above.
        from django.core.exceptions import PermissionDenied, SuspiciousOperation
        from django.http import Http404

        from .exceptions import DATABASE_ERRORS, DatabaseUnavailable

        if isinstance(exception, Http404 | PermissionDenied | SuspiciousOperation):
            return None
        if isinstance(exception, DATABASE_ERRORS):  # views outside the API (the admin)
            logger.error(
                "Database unavailable on %s %s: %s", request.method, request.path, exception
            )
            error = DatabaseUnavailable()
            response = error_response(error.status_code, error.code, error.detail)
            response["Retry-After"] = str(error.wait)
            return response
        logger.error(
            "Unhandled exception on %s %s", request.method, request.path, exc_info=exception
        )
        return error_response(500)


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: the admin's forms are the only CSRF-protected pages."""
    detail = f"CSRF verification failed: {reason}"
    if _in_admin(request):
        return admin_error_page(request, 403, f"{detail} Reload the page and try again.")
    return error_response(403, "csrf_failed", detail)
