"""A Redis cache of derived values (rendered JSON, a user's authentication
state) that is never stale after a change commits.

Each entry is the value or a tombstone. A change writes a tombstone with
Redis's own clock (`invalidate`, `invalidate_on_commit`); a reader that
misses notes Redis's time before it reads the database, and its value is
stored only if no tombstone is newer than that time — so a reader that read
the row before a change committed can never put the old state back after the
change's invalidation. A miss also takes a short per-key lock: one request
rebuilds the entry while the others wait for it (no stampede), or, after a
few milliseconds, build their answer themselves without storing it.

Without Redis (the local-memory cache of `make run`) or while Redis does
not answer, every read builds its value: the cache is an accelerator, never
the source of truth. Entries also expire (`ttl`), which bounds what a lost
invalidation (Redis down at that moment) could leave behind.
"""

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from weakref import WeakKeyDictionary

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

_clients: WeakKeyDictionary = WeakKeyDictionary()

# After Redis fails, it is not asked again for this long (seconds) in this
# process, by the cache here or by the throttles (core.throttling): a Redis
# that does not answer would otherwise cost every request its timeout, once
# for each of them.
DOWN_PAUSE = 5
_down_until = [0.0]

# A tombstone outlives any read that could have started before it.
TOMBSTONE_TTL = 300
# A value read from the database longer ago than this is not stored.
MAX_BUILD_SECONDS = 10
# A miss holds the key's rebuild lock this long at most; the others poll it.
LOCK_MS = 2000
WAIT_STEPS, WAIT_SECONDS = 10, 0.003

VALUE = b"V"  # then the bytes; a tombstone is b"T" and Redis's time (µs)

_NOW = """
local t = redis.call('TIME')
local now_s = t[1] .. string.format('%06d', t[2])
local now = tonumber(now_s)
"""

# KEYS: entry, lock. ARGV: lock ms. -> {entry or false, now (µs), got the lock}
_GET = (
    _NOW
    + """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 1) == 'V' then return {v, now_s, 0} end
local got = redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1])
return {v or false, now_s, got and 1 or 0}
"""
)

# KEYS: entry, lock. ARGV: read started (µs), value, ttl s, max build µs. -> stored?
_FILL = (
    _NOW
    + """
redis.call('DEL', KEYS[2])
local started = tonumber(ARGV[1])
if now - started > tonumber(ARGV[4]) then return 0 end
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 1) == 'T' and tonumber(string.sub(v, 2)) >= started then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
)

# KEYS: entries. ARGV: tombstone ttl s.
_INVALIDATE = (
    _NOW
    + """
local tombstone = 'T' .. now_s
for _, key in ipairs(KEYS) do redis.call('SET', key, tombstone, 'EX', ARGV[1]) end
return #KEYS
"""
)


def redis_client(cache: RedisCache):
    """A Redis client on the cache's connection pool, made once per cache
    object: Django's RedisCache builds a new client (and its table of ~300
    response callbacks) for every call, a visible cost on every request."""
    backend = cache._cache
    client = _clients.get(backend)
    if client is None:
        client = _clients[backend] = backend.get_client(write=True)
    return client


def redis_paused() -> bool:
    """Whether Redis failed moments ago (see DOWN_PAUSE)."""
    return time.monotonic() < _down_until[0]


def pause_redis(what: str, exc: Exception) -> None:
    """Redis failed `what`: leave it alone for DOWN_PAUSE seconds (a circuit
    breaker, so only the first request after a failure pays the timeout)."""
    _down_until[0] = time.monotonic() + DOWN_PAUSE
    logger.warning("Redis unavailable (%s); not asked for %ss: %s", what, DOWN_PAUSE, exc)


def available_cache() -> RedisCache | None:
    """The default cache when it is Redis and not paused (see pause_redis), else None."""
    cache = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(cache, RedisCache) or redis_paused():
        return None
    return cache


class VersionedCache:
    """Entries `<prefix>:<key>` of bytes built by a caller's function. The
    prefix may be a function, asked each time (it may depend on settings).

    `skip_while_paused`: an invalidation while Redis is paused (it failed
    moments ago) is not tried, and one that fails pauses it, so a hot write
    path never waits on a Redis that hangs; a change made meanwhile may then
    show in an older entry once Redis answers again, until the entry expires
    (`ttl`: keep it short for such a cache). Without it, every invalidation
    is tried, whatever it costs."""

    def __init__(
        self, prefix: str | Callable[[], str], *, ttl: int, skip_while_paused: bool = False
    ):
        self._prefix, self.ttl = prefix, ttl
        self.skip_while_paused = skip_while_paused
        self._scripts: dict = {}

    @property
    def prefix(self) -> str:
        return self._prefix() if callable(self._prefix) else self._prefix

    def _script(self, client, source: str):
        script = self._scripts.get((id(client), source))
        if script is None:
            script = self._scripts[(id(client), source)] = client.register_script(source)
        return script

    def _keys(self, cache: RedisCache, key) -> tuple[str, str]:
        entry = cache.make_and_validate_key(f"{self.prefix}:{key}")
        return entry, entry + ":lock"

    def get_or_build(self, key, build: Callable[[], bytes]) -> bytes:
        """The entry for `key`, or `build()` (stored when no change happened
        since this call began)."""
        cache = available_cache()
        if cache is None:
            return build()
        try:
            client = redis_client(cache)
            entry, lock = self._keys(cache, key)
            get = self._script(client, _GET)
            for _ in range(WAIT_STEPS):
                value, now, locked = get(keys=[entry, lock], args=[LOCK_MS], client=client)
                if value and value[:1] == VALUE:
                    return value[1:]
                if locked:
                    break
                time.sleep(WAIT_SECONDS)  # another request is rebuilding it
        except RedisError as exc:
            pause_redis(f"{self.prefix} cache", exc)
            return build()
        try:
            built = build()
        except BaseException:
            if locked:
                with contextlib.suppress(RedisError):
                    client.delete(lock)  # the next reader rebuilds without waiting
            raise
        if not locked:
            return built  # the rebuild took too long: answer, do not store
        try:
            self._script(client, _FILL)(
                keys=[entry, lock],
                args=[int(now), VALUE + built, self.ttl, MAX_BUILD_SECONDS * 1_000_000],
                client=client,
            )
        except RedisError as exc:
            pause_redis(f"{self.prefix} cache", exc)
        return built

    def invalidate(self, keys: Iterable) -> None:
        """Mark `keys` changed now: no value read before this is served or stored."""
        keys = list(keys)
        cache = caches[DEFAULT_CACHE_ALIAS]
        if not keys or not isinstance(cache, RedisCache):
            return
        if self.skip_while_paused and redis_paused():
            return
        try:
            client = redis_client(cache)
            entries = [self._keys(cache, key)[0] for key in keys]
            invalidate = self._script(client, _INVALIDATE)
            for start in range(0, len(entries), 500):
                invalidate(keys=entries[start : start + 500], args=[TOMBSTONE_TTL], client=client)
        except RedisError as exc:
            if self.skip_while_paused:
                pause_redis(f"{self.prefix} invalidation", exc)
                return
            # Not paused: the next write tries again. The entries expire (ttl).
            logger.error("Could not invalidate %s entries %s: %s", self.prefix, keys[:10], exc)

    def invalidate_on_commit(self, keys: Iterable, *, using: str | None = None) -> None:
        """`invalidate` now and again once the current transaction commits:
        the first keeps this transaction's own later reads (and a test's,
        inside one) from an old entry, the second any value a concurrent
        reader stored from the rows as they were before the commit."""
        keys = list(keys)
        if keys:
            self.invalidate(keys)
            if transaction.get_connection(using).in_atomic_block:
                transaction.on_commit(lambda: self.invalidate(keys), using=using)
