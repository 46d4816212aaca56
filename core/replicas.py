"""Read replicas with read-your-writes (SPEC §12, docs/scaling.md).

PostgreSQL's streaming replicas (`DATABASE_REPLICA_URLS`, aliases
`replica1`, `replica2`, ...) serve the reads that tolerate a little lag: the
order and product lists, stock movements, an order's events, the dashboard,
exports and backups. Everything else reads and writes the primary.

Replica use is explicit, as Saleor does it: a read that may go to a replica
runs inside `read_with_fallback(read, user=...)`, and only there does the
router send the ORM's reads to a replica. Inside it the primary is still used

- when the code is in a transaction on the primary (it must see its own
  writes: `PrimaryReplicaRouter` checks on every query);
- for `REPLICA_PIN_SECONDS` after the user's last write (read-your-writes):
  `ReplicaPinMiddleware` pins the user in Redis after every unsafe request,
  so every process, and API clients without cookies, see it; Redis failing
  counts as pinned;
- when no replica is usable: one that refuses connections, errs, or lags
  more than `REPLICA_MAX_LAG_SECONDS` is skipped, with a warning, until it is
  checked again (`REPLICA_CHECK_SECONDS`). A replica that fails in the middle
  of a read makes the read run again on the primary: clients never see it.

Writes never go to a replica: the router sends every write to the primary,
and replica sessions are read-only (core/dbconfig.py), so a write sent there
by mistake fails loudly instead of splitting the data.
"""

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, Error, connections
from redis.exceptions import RedisError

from .cache import available_cache, pause_redis, redis_client
from .metrics import Reading

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The replica the ORM reads from inside read_with_fallback(), else None.
_reading_from: ContextVar[str | None] = ContextVar("replica_reading_from", default=None)

LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
    ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())
END
"""


def replica_aliases() -> list[str]:
    return list(settings.DATABASE_REPLICAS)


# --- The router -------------------------------------------------------------------


class PrimaryReplicaRouter:
    """Writes and migrations: the primary. Reads: a replica only inside
    read_with_fallback() and outside a transaction, else Django's choice (the
    primary, or the database an instance was read from, for its relations)."""

    def db_for_read(self, model, **hints):
        alias = _reading_from.get()
        if alias is None or connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return None
        return alias

    def db_for_write(self, model, **hints):
        # Also for an instance read from a replica: saving it writes the primary.
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # A replica holds the primary's rows: instances from either may relate.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # A replica follows the primary's schema; it is never migrated itself.
        return False if db in settings.DATABASE_REPLICAS else None


# --- Read-your-writes: pins in Redis -------------------------------------------------


def _pin(user_id):
    """(a Redis client, the user's pin key), or (None, None) while Redis is
    not there to ask (not configured, or paused after a failure)."""
    cache = available_cache()
    if cache is None:
        return None, None
    return redis_client(cache), cache.make_and_validate_key(f"replica-pin:{user_id}")


def pin_to_primary(user_id) -> None:
    """The user wrote: their reads go to the primary for REPLICA_PIN_SECONDS."""
    if not settings.DATABASE_REPLICAS:
        return
    client, key = _pin(user_id)
    if client is None:
        return  # is_pinned() answers "pinned" while Redis is away
    try:
        client.set(key, b"1", ex=max(1, settings.REPLICA_PIN_SECONDS))
    except (RedisError, OSError) as exc:
        pause_redis("replica pin", exc)


def is_pinned(user_id) -> bool:
    """Whether the user wrote in the last REPLICA_PIN_SECONDS. Without an
    answer from Redis: yes (the primary is always right)."""
    client, key = _pin(user_id)
    if client is None:
        return True
    try:
        return bool(client.exists(key))
    except (RedisError, OSError) as exc:
        pause_redis("replica pin", exc)
        return True


class ReplicaPinMiddleware:
    """After every unsafe request (POST, PUT, PATCH, DELETE) of a signed-in
    user, whatever its answer, pin the user to the primary. The pin is set
    before the response leaves, so the client's next request finds it. DRF
    sets `request.user` on the Django request when it authenticates, so
    token and key clients are pinned as session users are."""

    SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method not in self.SAFE and settings.DATABASE_REPLICAS:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                pin_to_primary(user.pk)
        return response


# --- Which replicas are usable -------------------------------------------------------


@dataclass(frozen=True)
class ReplicaState:
    alias: str
    usable: bool
    lag_seconds: float | None  # None: unknown (it did not answer)
    reason: str  # why not: "unavailable", "lagging" or "read failed"; else ""
    detail: str  # what happened, for the log (never shown to clients)
    checked_at: float  # time.monotonic()


_states: dict[str, ReplicaState] = {}
_checking = threading.Lock()


def replica_lag(alias: str) -> float | None:
    """Seconds the replica's replay is behind (0 when it has replayed all it
    received); None when PostgreSQL cannot tell. Raises when it does not answer."""
    with connections[alias].cursor() as cursor:
        cursor.execute(LAG_SQL)
        (lag,) = cursor.fetchone()
    return None if lag is None else max(0.0, float(lag))


def _check(alias: str) -> ReplicaState:
    now = time.monotonic()
    try:
        lag = replica_lag(alias)
    except Error as exc:
        _close_quietly(alias)
        return ReplicaState(alias, False, None, "unavailable", str(exc).strip(), now)
    limit = settings.REPLICA_MAX_LAG_SECONDS
    if lag is None or lag > limit:
        shown = "an unknown time" if lag is None else f"{lag:.1f}s"
        detail = f"{shown} behind (limit {limit:g}s)"
        return ReplicaState(alias, False, lag, "lagging", detail, now)
    return ReplicaState(alias, True, lag, "", "", now)


def replica_state(alias: str) -> ReplicaState:
    """The replica's state, checked at most once per REPLICA_CHECK_SECONDS
    in this process: one thread checks while the others go on with the last
    answer (the first check ever is waited for)."""
    state = _states.get(alias)
    if state is not None and not _expired(state):
        return state
    if not _checking.acquire(blocking=state is None):
        return state  # another thread is checking it
    try:
        state = _states.get(alias)
        if state is not None and not _expired(state):
            return state  # checked by another thread while this one waited
        new = _check(alias)
        _record(new, previous=state)
        return new
    finally:
        _checking.release()


def _expired(state: ReplicaState) -> bool:
    return time.monotonic() - state.checked_at >= settings.REPLICA_CHECK_SECONDS


def _record(new: ReplicaState, *, previous: ReplicaState | None) -> None:
    _states[new.alias] = new
    if not new.usable:
        logger.warning(
            "Replica %s skipped for %gs, its reads go to the primary: %s, %s",
            new.alias,
            settings.REPLICA_CHECK_SECONDS,
            new.reason,
            new.detail,
        )
    elif previous is not None and not previous.usable:
        logger.info("Replica %s is usable again (lag %.1fs)", new.alias, new.lag_seconds or 0)


def mark_unusable(alias: str, exc: Exception) -> None:
    """A read on the replica failed: skip it until it is checked again."""
    _close_quietly(alias)
    _record(
        ReplicaState(alias, False, None, "read failed", str(exc).strip(), time.monotonic()),
        previous=_states.get(alias),
    )


def reset_states() -> None:
    """Forget every replica's state (tests; a process after fork)."""
    _states.clear()


def _close_quietly(alias: str) -> None:
    with contextlib.suppress(Error):
        connections[alias].close()


def replica_readings() -> list:
    """For /metrics: each replica's state as this process last saw it
    (checked again if older than REPLICA_CHECK_SECONDS)."""
    readings = []
    for alias in settings.DATABASE_REPLICAS:
        state = replica_state(alias)
        labels = {"replica": alias}
        readings.append(
            Reading(
                "db_replica_usable",
                "Whether lag-tolerant reads may use this replica (1) or it is skipped (0).",
                1.0 if state.usable else 0.0,
                labels,
            )
        )
        if state.lag_seconds is not None:
            readings.append(
                Reading(
                    "db_replica_lag_seconds",
                    "How far the replica's replay is behind the primary, in seconds.",
                    state.lag_seconds,
                    labels,
                )
            )
    return readings


# --- Choosing where a read goes --------------------------------------------------------


def read_alias(user=None) -> str:
    """Where a lag-tolerant read by `user` (None: no one, e.g. a task) goes:
    a usable replica, or the primary."""
    replicas = settings.DATABASE_REPLICAS
    if not replicas or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    if user is not None and getattr(user, "is_authenticated", False) and is_pinned(user.pk):
        return DEFAULT_DB_ALIAS
    usable = [alias for alias in replicas if replica_state(alias).usable]
    if not usable:
        return DEFAULT_DB_ALIAS
    return usable[0] if len(usable) == 1 else random.choice(usable)  # noqa: S311


def read_with_fallback(read: Callable[[], T], *, user=None) -> T:
    """`read()`, with the ORM's reads on a replica when one may serve `user`
    (read_alias); if the replica fails meanwhile, it is skipped and `read()`
    runs again on the primary. `read` must only read: it may run twice."""
    alias = read_alias(user)
    if alias == DEFAULT_DB_ALIAS:
        return read()
    token = _reading_from.set(alias)
    try:
        return read()
    except Error as exc:
        # Django marks the connection an error came through: the replica's,
        # or the primary's (the caller's own error, raised as it is).
        if not connections[alias].errors_occurred:
            raise
        mark_unusable(alias, exc)
    finally:
        _reading_from.reset(token)
    return read()


class ReplicaListMixin:
    """A DRF view whose `list` reads from a replica when one may serve the
    user (read_with_fallback). Other lag-tolerant actions wrap their body in
    read_with_fallback themselves."""

    def list(self, request, *args, **kwargs):
        parent = super().list
        return read_with_fallback(lambda: parent(request, *args, **kwargs), user=request.user)
