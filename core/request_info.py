"""What the access log line and the request metrics say about a request,
besides its id: the route it matched and who made it.

Both are read after the response is made. Neither may cost the request
anything: the user is read only if something already loaded it, never by
opening the session just to log it.
"""

from django.utils.functional import empty

# The route label of a request that matched no URL pattern (a 404, or a
# response a middleware gave before the URL was resolved). Never the raw path:
# every distinct path a scanner tries would be a new time series.
UNMATCHED = "unmatched"


def route_of(request) -> str:
    """The URL pattern the request matched (`api/v1/orders/<int:pk>/`), or UNMATCHED."""
    match = getattr(request, "resolver_match", None)
    return (match.route if match is not None else "") or UNMATCHED


def user_id_of(request) -> int | None:
    """The id of the authenticated user, None for anonymous requests and for
    requests where nothing looked at the user (a lazy `request.user` stays
    unevaluated: loading it would read the session for a log line)."""
    user = request.__dict__.get("user")
    if user is None or getattr(user, "_wrapped", None) is empty:
        return None
    return user.pk if user.is_authenticated else None
