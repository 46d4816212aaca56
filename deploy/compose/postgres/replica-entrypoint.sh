#!/bin/bash
# The scale profile's streaming replica (docker-compose.yml, postgres-replica).
#
# First start (an empty volume): make sure the primary has the `replicator`
# role, copy the primary with `pg_basebackup -R` (which writes standby.signal
# and primary_conninfo), then run PostgreSQL: a hot standby that streams from
# the primary and answers read-only queries. Later starts only run it.
# If the replica fell too far behind (past the primary's wal_keep_size), drop
# its volume and start it again: `docker compose --profile scale rm -sf
# postgres-replica && docker volume rm <project>_pgdata-replica`.
set -euo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
: "${PRIMARY_HOST:=postgres}"
: "${PRIMARY_PORT:=5432}"

if [ "$(id -u)" = 0 ]; then
    # As in the image's own entrypoint: the volume belongs to postgres.
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec gosu postgres bash "$0" "$@"
fi

# standby.signal is written last: without it, any earlier copy was cut short
# (or this copy was promoted: a development replica, started again from scratch).
if [ ! -f "$PGDATA/standby.signal" ]; then
    # The primary may still be initialising (its socket answers before TCP).
    until pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT"; do sleep 1; done
    PGHOST="$PRIMARY_HOST" PGPORT="$PRIMARY_PORT" PGPASSWORD="$POSTGRES_PASSWORD" \
        bash /docker-entrypoint-initdb.d/10-replication.sh
    mkdir -p "$PGDATA" && chmod 700 "$PGDATA"
    find "$PGDATA" -mindepth 1 -delete
    echo "replica: copying the primary (pg_basebackup)" >&2
    PGPASSWORD="$POSTGRES_REPLICATION_PASSWORD" pg_basebackup \
        --host="$PRIMARY_HOST" --port="$PRIMARY_PORT" --username=replicator \
        --pgdata="$PGDATA" --wal-method=stream --checkpoint=fast \
        --write-recovery-conf --no-password
fi

# The walreceiver's libpq reads the password from here too.
export PGPASSWORD="$POSTGRES_REPLICATION_PASSWORD"
# hot_standby_feedback: a long read here is not cancelled because the
# primary's vacuum removed the rows it reads. "$@": extra flags, if any.
exec postgres -c hot_standby=on -c hot_standby_feedback=on "$@"
