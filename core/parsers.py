"""The API's JSON parser: DRF's, with a bound on nesting.

A body like `[[[[...]]]]` a few kilobytes long makes Python's JSON decoder
recurse until it raises RecursionError, which DRF does not catch (a 500,
before any authentication). Such a body — and any nested deeper than
`MAX_DEPTH`, which no request of this API needs — is a 400 `parse_error`.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32


def nesting_depth(data) -> int:
    """How deep lists and objects are nested in `data` (a scalar is 0)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        stack.extend((child, depth + 1) for child in children)
    return deepest


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        if nesting_depth(data) > MAX_DEPTH:
            raise ParseError(f"JSON parse error - the body is nested deeper than {MAX_DEPTH}.")
        return data
