"""Request bodies over DATA_UPLOAD_MAX_MEMORY_SIZE answer 413.

Django enforces that limit only when `request.body` is read; DRF's parsers read
the stream directly, so the declared length is checked here, before any view.

A chunked body (Transfer-Encoding: chunked, no Content-Length; gunicorn
de-chunks it) would reach Django as an empty body: Django bounds its stream
by Content-Length. It is read here, up to one byte past the limit: over the
limit it is a 413, otherwise it is handed on with its length, as if sent
with one.
"""

import io

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream

from .errors import error_response


class RequestBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        declared = request.META.get("CONTENT_LENGTH")
        if declared:
            try:
                length = int(declared)
            except ValueError:
                return error_response(400, "bad_request", "Content-Length is not a number.")
        elif "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = request.META["wsgi.input"].read(limit + 1 if limit is not None else -1)
            length = len(body)
            request._stream = LimitedStream(io.BytesIO(body), length)
            request.META["CONTENT_LENGTH"] = str(length)
        else:
            length = 0
        if limit is not None and length > limit:
            return error_response(
                413, "request_too_large", f"The request body is over {limit} bytes."
            )
        return self.get_response(request)
