"""Core's scrape-time readings (see `core.metrics.register_collector`): the
events outbox and the Celery queues. The apps register their own (e-mails
unsent, webhook deliveries pending) in their `AppConfig.ready()`."""

import redis
from django.conf import settings
from django.utils import timezone

from .metrics import Reading, age_seconds
from .models import Event

BACKLOG_HELP = "Rows of an outbox still to be handled (events, emails, webhook_deliveries)."
AGE_HELP = "Seconds the oldest row still to be handled in an outbox has waited (0 when empty)."


def outbox_readings(outbox: str, count: int, oldest, now) -> list[Reading]:
    """`outbox_backlog` and `outbox_oldest_age_seconds` for one outbox: one
    name for all, so that one alert rule watches every outbox."""
    labels = {"outbox": outbox}
    return [
        Reading("outbox_backlog", BACKLOG_HELP, count, labels),
        Reading("outbox_oldest_age_seconds", AGE_HELP, age_seconds(oldest, now), labels),
    ]


def events_backlog() -> list[Reading]:
    """Events not yet fanned out to webhooks (`published_at` unset): both
    queries read the partial index of those rows only."""
    unpublished = Event.objects.filter(published_at__isnull=True)
    count = unpublished.count()
    oldest = unpublished.order_by("id").values_list("created_at", flat=True).first()
    return outbox_readings("events", count, oldest, timezone.now())


# kombu's Redis transport keeps a queue as one list per priority step:
# "celery", then "celery\x06\x163", "...6", "...9" for priorities 3, 6 and 9.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def celery_queue_names() -> list[str]:
    """The queues the workers consume: the default one and every routed one."""
    routes = getattr(settings, "CELERY_TASK_ROUTES", None) or {}
    routed = {route["queue"] for route in routes.values() if "queue" in route}
    return sorted({getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"), *routed})


def celery_queues() -> list[Reading]:
    """Messages waiting in each Celery queue, when the broker is Redis (one
    pipelined round trip of LLENs); nothing for other brokers."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return []
    timeout = settings.REDIS_TIMEOUT
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    queues = celery_queue_names()
    try:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(queue + suffix)
        lengths = pipe.execute()
    finally:
        client.close()
    steps = len(_PRIORITY_SUFFIXES)
    return [
        Reading(
            "celery_queue_length",
            "Messages waiting in a Celery queue on the broker (not yet taken by a worker).",
            sum(lengths[index * steps : (index + 1) * steps]),
            {"queue": queue},
        )
        for index, queue in enumerate(queues)
    ]
