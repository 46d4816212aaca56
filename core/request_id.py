"""Request ids: taken from `X-Request-ID` or generated, echoed in the response
and attached to every log line written while the request is handled.

Small enough to keep here: django-guid does the same but echoes any header
value unchecked, and a request id ends up in every log line, so it is bounded
to a safe alphabet and length first.
"""

import logging
import re
import time
import uuid
from contextvars import ContextVar

from .request_info import route_of, user_id_of
from .sentry import tag_request_id

HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

access_logger = logging.getLogger("core.access")

_request_id: ContextVar[str] = ContextVar("request_id", default="-")


def get_request_id() -> str:
    """The id of the request being handled in this context, or "-" outside one."""
    return _request_id.get()


def set_request_id(value: str):
    """Bind an id to the current context (a request, or a task run); returns a reset token."""
    return _request_id.set(value)


def reset_request_id(token) -> None:
    _request_id.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | None) -> str:
    """The client's id when it is safe to log, else a fresh one."""
    if value and _SAFE_ID.match(value):
        return value
    return new_request_id()


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = clean_request_id(request.headers.get(HEADER))
        request.request_id = request_id
        token = set_request_id(request_id)
        tag_request_id(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[HEADER] = request_id
            duration_ms = (time.perf_counter() - started) * 1000
            # The access log line, written while the id is still bound. Its
            # fields are the JSON format's (LOG_FORMAT=json); the text format
            # prints the message.
            access_logger.info(
                "%s %s %s %.1fms",
                request.method,
                request.get_full_path(),
                response.status_code,
                duration_ms,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "route": route_of(request),
                    "status": response.status_code,
                    "duration_ms": round(duration_ms, 1),
                    "user_id": user_id_of(request),
                },
            )
            return response
        finally:
            reset_request_id(token)


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every log record (the formatter prints it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # django.request logs a response after the middleware has returned;
        # its records carry the request itself.
        request = getattr(record, "request", None)
        record.request_id = getattr(request, "request_id", None) or get_request_id()
        return True
