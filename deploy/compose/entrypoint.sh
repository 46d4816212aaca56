#!/bin/sh
# Entrypoint of the web, the workers and beat in docker-compose.yml.
#
# `docker compose --profile scale up` adds PgBouncer and a streaming replica
# of PostgreSQL; the same services then run with different settings. Compose
# cannot change a service's environment by profile, so this script looks at
# what runs: a profile's service has a name on the compose network only while
# it runs (and compose starts it first: `depends_on ... required: false`).
# Without the scale profile, nothing here applies and the command runs as is.
set -eu

resolves() {
    getent hosts "$1" >/dev/null 2>&1
}

if resolves pgbouncer; then
    # PgBouncer in transaction mode in front of the primary
    # (deploy/compose/pgbouncer/pgbouncer.ini). It pools: psycopg's own pool
    # must stay off (DATABASE_POOL), or connections would be pooled twice.
    export DATABASE_URL="postgres://orders:orders@pgbouncer:6432/orders"
    export DATABASE_POOLER=pgbouncer
    unset DATABASE_POOL
    echo "orders-entrypoint: scale profile: DATABASE_URL through PgBouncer" >&2
fi
if resolves postgres-replica; then
    # Reads that tolerate lag (SPEC §12); read-your-writes pins in Redis.
    export DATABASE_REPLICA_URLS="postgres://orders:orders@postgres-replica:5432/orders"
    echo "orders-entrypoint: scale profile: reads from postgres-replica" >&2
fi

exec "$@"
