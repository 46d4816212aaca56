"""Rate limits on fixed windows.

DRF's SimpleRateThrottle keeps every request's timestamp in one cache entry and
rewrites the whole list on each request, so its cost grows with the rate. Here
each request is one atomic increment of a per-window counter: the same cost at
any rate. When the cache (Redis) cannot be reached the request is let through:
throttling protects the service, it must not take it down.
"""

import re

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as default_cache
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework import throttling

from .cache import pause_redis, redis_client, redis_paused


def _count_hit(cache, key: str, timeout: int) -> int:
    """Add one to the window's counter and return it. On Redis: INCR and
    EXPIRE in one pipelined round trip, on the cache's own connection pool
    and key (so `cache.clear()` resets it too). Elsewhere (the local-memory
    cache of `make run`): add() then incr()."""
    if cache is default_cache:  # DRF's: a proxy to this thread's default cache
        cache = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(cache, RedisCache):
        key = cache.make_and_validate_key(key)
        pipe = redis_client(cache).pipeline(transaction=False)
        # The key names its window, so refreshing the expiry on every hit
        # only keeps a finished window's counter a little longer.
        count, _ = pipe.incr(key).expire(key, timeout).execute()
        return count
    cache.add(key, 0, timeout)  # a no-op when the key exists
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout)
        return 1


RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])[a-z]*\s*$")
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class FixedWindowMixin:
    wait_seconds: float | None = None

    def parse_rate(self, rate):
        """`N/period` as DRF reads it (`10/min`, `100/hour`), and also with a
        count of periods (`3/10min`, `5/2h`)."""
        if rate is None:
            return None, None
        match = RATE.match(rate)
        if match is None:
            raise ImproperlyConfigured(f"Bad throttle rate {rate!r}: use e.g. 10/min or 3/10min.")
        count, periods, unit = match.groups()
        return int(count), int(periods or 1) * PERIODS[unit]

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        if redis_paused():
            return True  # Redis failed moments ago: do not wait on it again
        now = int(self.timer())
        window_start = now - now % self.duration
        window_key = f"{key}:{window_start}"
        try:
            count = _count_hit(self.cache, window_key, self.duration + 1)
        except (RedisError, OSError) as exc:
            # Only the first request after a failure pays the timeout; the
            # next ones in the pause go straight through (core.cache's breaker).
            pause_redis("throttling: requests allowed", exc)
            return True
        self.wait_seconds = max(1, window_start + self.duration - now)
        return count <= self.num_requests

    def wait(self):
        return self.wait_seconds


class AnonThrottle(FixedWindowMixin, throttling.AnonRateThrottle):
    """Anonymous clients, per IP address."""


class UserThrottle(FixedWindowMixin, throttling.UserRateThrottle):
    """The API as a whole, per authenticated user (per IP when anonymous)."""


class ClientScopedThrottle(FixedWindowMixin, throttling.SimpleRateThrottle):
    """Per client address, for a view's `throttle_scope` (login, register,
    one-time codes): these requests come before anyone is authenticated."""

    def __init__(self):
        # The scope comes from the view, so the rate is resolved in allow_request.
        pass

    def allow_request(self, request, view):
        self.scope = getattr(view, "throttle_scope", None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
