"""`LOG_FORMAT=json`: one JSON object a line, for log shippers (SPEC §11).

Every line has `time` (ISO 8601, UTC), `level`, `logger`, `request_id` and
`message`, plus what the record carries: the access line (`core.access`)
adds `method`, `path`, `route`, `status`, `duration_ms` and `user_id`; a
traceback comes as `exc_info`, inside the same line.
"""

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

# django.request attaches the request object and its status to its records:
# the request would print as "<WSGIRequest ...>", the status is in the message.
_LEFT_OUT = ("request", "status_code")


class JsonFormatter(BaseJsonFormatter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(request_id)s %(message)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, *_LEFT_OUT])
        super().__init__(*args, **kwargs)
