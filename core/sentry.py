"""Error tracking with Sentry (SPEC §11), on only when SENTRY_DSN is set.

`settings.py` calls `sentry_init` at start-up, so the web processes and the
Celery workers (which load the same settings) report alike: unhandled
exceptions in views and tasks, and ERROR log lines with their traceback.
Every event carries the id of the request (or task run) it happened in as the
`request_id` tag: search Sentry for it, or the logs for the id Sentry shows.

No personal data by default: no user, no cookies, no request bodies (an order
holds an address; a login, an e-mail), and the credentials headers removed.
"""

import sentry_sdk

# Headers that authenticate a client: never sent, whatever the scrubber's list says.
_SECRET_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "x-csrftoken"})


def _strip_personal_data(event, hint):
    """before_send: drop what could identify or authenticate a person."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("cookies", None)
        request.pop("data", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                name: value
                for name, value in headers.items()
                if name.lower() not in _SECRET_HEADERS
            }
    event.pop("user", None)
    return event


def sentry_init(
    *,
    dsn: str,
    environment: str = "",
    release: str = "",
    traces_sample_rate: float = 0.0,
    **options,
) -> None:
    """Turn Sentry on for Django and Celery. `options` go to `sentry_sdk.init`
    as they are (the tests pass a `transport`)."""
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        max_request_body_size="never",
        integrations=[DjangoIntegration(), CeleryIntegration()],
        before_send=_strip_personal_data,
        **options,
    )


def tag_request_id(request_id: str) -> None:
    """Tag what Sentry reports from now on in this request or task run with
    its id (a no-op while Sentry is off)."""
    if sentry_sdk.get_client().is_active():
        sentry_sdk.set_tag("request_id", request_id)
