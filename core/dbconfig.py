"""How DATABASES is built from the environment (SPEC §2, §12): the primary,
its read replicas, and what a connection pooler changes. Pure functions of
plain dicts, so settings.py can call them before Django is set up, and the
tests can build a replica's entry exactly as production does."""

from django.core.exceptions import ImproperlyConfigured

POSTGRESQL = "django.db.backends.postgresql"
POOLERS = {"", "pgbouncer"}


def postgres_options(
    config: dict, *, connect_timeout: int, pooler: str = "", pool: dict | None = None
) -> dict:
    """`config` (one DATABASES entry on PostgreSQL) with the project's
    connection settings; returns it.

    - `connect_timeout`: an unreachable server fails a request quickly.
    - `pooler="pgbouncer"` (transaction mode): a server connection is lent for
      one transaction only, so nothing may outlive one: no server-side cursors
      (Django's named cursors live across transactions). Django already turns
      psycopg's prepared statements off, and the project keeps no session
      state (its advisory locks are transaction-scoped; PgBouncer carries the
      time zone and application_name it sets per client).
    - `pool`: psycopg's pool inside the process (Django's `OPTIONS["pool"]`);
      connections are handed back to it at the end of each request, so
      CONN_MAX_AGE must be 0.
    """
    if pooler not in POOLERS:
        raise ImproperlyConfigured(f"DATABASE_POOLER must be empty or pgbouncer, not {pooler!r}.")
    if pooler and pool is not None:
        raise ImproperlyConfigured(
            "DATABASE_POOL=1 and DATABASE_POOLER=pgbouncer pool twice: choose one."
        )
    options = config.setdefault("OPTIONS", {})
    options.setdefault("connect_timeout", connect_timeout)
    if pooler == "pgbouncer":
        config["DISABLE_SERVER_SIDE_CURSORS"] = True
        options["prepare_threshold"] = None
    if pool is not None:
        options["pool"] = pool
        config["CONN_MAX_AGE"] = 0
    return config


def replica_config(primary: dict, replica: dict, *, connect_timeout: int) -> dict:
    """A replica's DATABASES entry: `replica` (parsed from its URL) with the
    primary's connection settings, plus:

    - every session is read-only (`default_transaction_read_only`), so a write
      sent to a replica by mistake fails there even if the address points at
      a primary;
    - its own connect timeout (REPLICA_CONNECT_TIMEOUT; libpq waits at
      least 2 s): a replica that does not answer is skipped, and a request
      should not wait long to find out;
    - in the test suite it mirrors the primary's test database (Django's
      `TEST["MIRROR"]`): a real streaming replica of the test server has it.
    """
    if replica.get("ENGINE") != POSTGRESQL:
        raise ImproperlyConfigured("DATABASE_REPLICA_URLS must be postgres:// URLs.")
    config = {**replica}
    for key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "DISABLE_SERVER_SIDE_CURSORS"):
        if key in primary:
            config[key] = primary[key]
    options = {**primary.get("OPTIONS", {}), **replica.get("OPTIONS", {})}
    options["connect_timeout"] = connect_timeout
    read_only = "-c default_transaction_read_only=on"
    if read_only not in options.get("options", ""):
        options["options"] = f"{options.get('options', '')} {read_only}".strip()
    config["OPTIONS"] = options
    config["TEST"] = {"MIRROR": "default"}
    return config
