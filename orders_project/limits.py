"""Request bodies over DATA_UPLOAD_MAX_MEMORY_SIZE answer 413.

Django enforces that limit only when `request.body` is read; DRF's parsers read
the stream directly, so the declared length is checked here, before any view.
"""

from django.conf import settings

from .errors import error_response


class RequestBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "bad_request", "Content-Length is not a number.")
        if limit is not None and length > limit:
            return error_response(
                413, "request_too_large", f"The request body is over {limit} bytes."
            )
        return self.get_response(request)
