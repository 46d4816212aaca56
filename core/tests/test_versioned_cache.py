"""core.cache.VersionedCache against the real Redis: entries served until a
change, a change never followed by the old value, one rebuild per key, and
every read answered when Redis is gone."""

import threading
import time

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

from core import cache as versioned
from core.cache import VersionedCache

pytestmark = pytest.mark.skipif(
    not isinstance(caches["default"], RedisCache), reason="needs Redis: set REDIS_URL"
)


class Source:
    """A value that changes, and a count of how often it was read."""

    def __init__(self):
        self.value, self.reads = 0, 0
        self.lock = threading.Lock()

    def read(self, delay: float = 0.0) -> bytes:
        with self.lock:
            self.reads += 1
            value = self.value
        time.sleep(delay)
        return str(value).encode()


@pytest.fixture
def entries():
    return VersionedCache("test", ttl=60)


def test_an_entry_is_built_once_then_served(entries):
    source = Source()
    assert entries.get_or_build(1, source.read) == b"0"
    source.value = 1  # unannounced: the entry stands
    assert entries.get_or_build(1, source.read) == b"0"
    assert source.reads == 1
    assert entries.get_or_build(2, source.read) == b"1"  # another key


def test_after_an_invalidation_the_next_read_rebuilds(entries):
    source = Source()
    entries.get_or_build(1, source.read)
    source.value = 1
    entries.invalidate([1])
    assert entries.get_or_build(1, source.read) == b"1"
    assert entries.get_or_build(1, source.read) == b"1"
    assert source.reads == 2


def test_a_value_read_before_a_change_is_never_stored_after_it(entries):
    source = Source()

    def read_then_change():
        old = source.read()
        source.value = 1  # the change commits while this reader is still busy...
        entries.invalidate([1])  # ...and its invalidation runs
        return old

    assert entries.get_or_build(1, read_then_change) == b"0"  # answered, not stored
    assert entries.get_or_build(1, source.read) == b"1"


def test_many_readers_of_a_missing_entry_rebuild_it_once(entries):
    source = Source()
    barrier = threading.Barrier(8)
    results = []

    def reader():
        barrier.wait()
        results.append(entries.get_or_build(1, lambda: source.read(delay=0.01)))

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [b"0"] * 8
    assert source.reads == 1


def test_a_failing_build_releases_the_key_for_the_next_reader(entries):
    def fail():
        raise LookupError

    with pytest.raises(LookupError):
        entries.get_or_build(1, fail)
    started = time.monotonic()
    assert entries.get_or_build(1, Source().read) == b"0"
    assert time.monotonic() - started < 0.5  # not waiting out the lock


def test_without_redis_every_read_builds_and_nothing_fails(entries, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    source = Source()
    assert entries.get_or_build(1, source.read) == b"0"
    entries.invalidate([1])  # logged, not raised
    source.value = 1
    assert entries.get_or_build(1, source.read) == b"1"
    assert source.reads == 2
    assert versioned._down_until[0] > time.monotonic()  # paused, not retried per request


def test_a_cache_that_skips_while_paused_never_waits_on_redis(monkeypatch):
    """Invalidations of a `skip_while_paused` cache are not tried while the
    breaker is open; one that fails opens it."""
    calls = []

    def failing_client(cache):
        calls.append(cache)
        raise RedisError("hangs")

    monkeypatch.setattr(versioned, "redis_client", failing_client)
    skipping = VersionedCache("test:skipping", ttl=5, skip_while_paused=True)
    skipping.invalidate(["a"])
    assert len(calls) == 1 and versioned.redis_paused()
    skipping.invalidate(["b"])
    assert len(calls) == 1  # paused: not tried
    VersionedCache("test:trying", ttl=5).invalidate(["c"])
    assert len(calls) == 2  # the default tries whatever the breaker says
