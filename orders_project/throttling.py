"""Rate limits on fixed windows.

DRF's SimpleRateThrottle keeps every request's timestamp in one cache entry and
rewrites the whole list on each request, so its cost grows with the rate. Here
each request is one atomic increment of a per-window counter: the same cost at
any rate. When the cache (Redis) cannot be reached the request is let through:
throttling protects the service, it must not take it down.
"""

import logging

from redis.exceptions import RedisError
from rest_framework import throttling

logger = logging.getLogger(__name__)


class FixedWindowMixin:
    wait_seconds: float | None = None

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = int(self.timer())
        window_start = now - now % self.duration
        window_key = f"{key}:{window_start}"
        try:
            # add() is a no-op when the key exists; the timeout outlives the window.
            self.cache.add(window_key, 0, self.duration + 1)
            try:
                count = self.cache.incr(window_key)
            except ValueError:  # expired between add() and incr()
                self.cache.set(window_key, 1, self.duration + 1)
                count = 1
        except (RedisError, OSError) as exc:
            logger.warning("Throttle cache unavailable, request allowed: %s", exc)
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
