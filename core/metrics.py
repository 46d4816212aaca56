"""Prometheus metrics (SPEC §11): what `GET /metrics` shows, and to whom.

Two kinds of numbers:

- Counted where they happen, in the process they happen in: requests
  (`MetricsMiddleware`, here), orders placed and moved (`orders.metrics`),
  webhook attempts (`webhooks.metrics`), Celery task durations
  (`core.task_metrics`, in the worker, on the worker's own endpoint).
- Read when Prometheus scrapes, by the collectors that apps register with
  `register_collector`: the outbox backlog, pending orders, the Celery queues,
  and Celery task runs by outcome, which every worker on every host adds to
  one table (`core.models.TaskRuns`) so that this endpoint can show them.
  A few cheap indexed queries each, never counters kept beside the data (they
  would drift from it).

Under gunicorn each worker is a process of its own. prometheus-client's
multi-process mode (PROMETHEUS_MULTIPROC_DIR, which gunicorn.conf.py sets
before any worker starts) has every worker write its numbers to memory-mapped
files in one directory, and a scrape adds up the files of all of them, dead
workers' included, so a counter never goes back when a worker is replaced.
Without the variable (runserver, the tests) the process's own registry is shown.

`/metrics` answers only a bearer token equal to METRICS_TOKEN or a client in
METRICS_ALLOWED_IPS; anyone else gets the 404 of any unknown URL.
"""

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import NamedTuple

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from rest_framework.throttling import BaseThrottle

from .errors import error_response
from .request_info import route_of

logger = logging.getLogger(__name__)

# No `*_created` series: multi-process mode has none, so a single process shows none either.
disable_created_metrics()

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# --- Requests -------------------------------------------------------------------------

# The method is the client's to choose: anything unusual is one label value.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds. An order is placed in about 8 ms (docs/performance.md); the last
# bucket is gunicorn's 30 s timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by URL pattern, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request inside Django, by URL pattern, method and status.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)


def observe_request(request, status: int, seconds: float) -> None:
    """Count one answered request."""
    method = request.method if request.method in METHODS else "other"
    labels = (route_of(request), method, str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_LATENCY.labels(*labels).observe(seconds)


class MetricsMiddleware:
    """Counts and times every request, labelled by the URL pattern it matched
    (`request.resolver_match.route`, known only after the view ran). Placed
    just inside RequestIdMiddleware, it sees the final status of every answer,
    errors rewritten into JSON included."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        observe_request(request, response.status_code, time.perf_counter() - started)
        return response


# --- Read at scrape time ----------------------------------------------------------------


class Reading(NamedTuple):
    """One value read from the data when Prometheus scrapes: a gauge, or a
    counter (`kind="counter"`, named without its `_total`) kept in the data."""

    name: str
    help: str
    value: float
    labels: dict[str, str] = {}
    kind: str = "gauge"


_collectors: dict[str, Callable[[], Iterable[Reading]]] = {}


def register_collector(name: str, collect: Callable[[], Iterable[Reading]]) -> None:
    """Have `collect()` called at each scrape (apps register theirs in
    `AppConfig.ready()`, so core needs to know none of their models). A
    collector that raises is left out of that scrape, logged, and shows as
    `metrics_collector_up{collector=name} 0`; the rest are still shown."""
    _collectors[name] = collect


def age_seconds(since, now) -> float:
    """Seconds from `since` to `now`; 0 for an empty backlog (`since` None)."""
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0


class _ScrapeTimeCollector:
    """The registered collectors' readings, as gauge (or counter) families. Readings of one
    name from several collectors (`outbox_backlog{outbox=...}` comes from three
    apps) become one family: the text format allows a name once."""

    def collect(self):
        families: dict[str, GaugeMetricFamily] = {}
        up = GaugeMetricFamily(
            "metrics_collector_up",
            "Whether a scrape-time collector answered at this scrape (1) or failed (0).",
            labels=["collector"],
        )
        for name, collect in list(_collectors.items()):
            try:
                readings = list(collect())
            except Exception:  # a database or Redis that is down must not hide the rest
                logger.warning("The metrics collector %r failed", name, exc_info=True)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            for reading in readings:
                family = families.get(reading.name)
                if family is None:
                    kind = CounterMetricFamily if reading.kind == "counter" else GaugeMetricFamily
                    family = families[reading.name] = kind(
                        reading.name, reading.help, labels=sorted(reading.labels)
                    )
                family.add_metric(
                    [reading.labels[k] for k in sorted(reading.labels)], reading.value
                )
        yield from families.values()
        yield up


class _ThisProcess:
    """The process's own registry, when there is no multi-process directory."""

    def collect(self):
        return REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


@lru_cache(maxsize=1)
def scrape_registry() -> CollectorRegistry:
    """What a scrape shows: every process's counters (the multi-process
    files) or this process's, then the scrape-time readings."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(_ScrapeTimeCollector())
    return registry


def exposition() -> bytes:
    """The Prometheus text format of everything a scrape shows."""
    return generate_latest(scrape_registry())


# --- Who may scrape ------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def client_address(request) -> str | None:
    """The client's address as the API's throttles see it (NUM_PROXIES:
    REMOTE_ADDR, or the address that many proxies wrote in X-Forwarded-For)."""
    return BaseThrottle().get_ident(request)


def scraper_allowed(authorization: str, address: str | None) -> bool:
    """A bearer token (`authorization`, the header's value) equal to
    METRICS_TOKEN, or a client `address` inside METRICS_ALLOWED_IPS (addresses
    or CIDR networks). Neither set: nobody. The web's /metrics and the Celery
    worker's endpoint both ask this."""
    token = settings.METRICS_TOKEN
    scheme, _, sent = authorization.partition(" ")
    sent = sent.strip() if scheme.lower() == "bearer" else ""
    if token and sent and hmac.compare_digest(sent.encode(), token.encode()):
        return True
    networks = _networks(tuple(settings.METRICS_ALLOWED_IPS))
    if not networks:
        return False
    try:
        client = ipaddress.ip_address((address or "").strip())
    except ValueError:  # a forged or garbled X-Forwarded-For
        return False
    return any(client in network for network in networks)


def metrics_allowed(request) -> bool:
    """Whether this request may read /metrics (see `scraper_allowed`)."""
    return scraper_allowed(request.headers.get("Authorization", ""), client_address(request))


@csrf_exempt
@never_cache
def metrics_view(request):
    """`GET /metrics`: the Prometheus text format, for those allowed; a 404
    for everyone else, so the endpoint does not even show that it exists."""
    if not metrics_allowed(request):
        return error_response(404)
    if request.method not in ("GET", "HEAD"):
        response = error_response(405)
        response["Allow"] = "GET, HEAD"
        return response
    body = exposition() if request.method == "GET" else b""
    # The classic text format (0.0.4) that every Prometheus version and
    # compatible scraper reads; the names here need nothing newer.
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
