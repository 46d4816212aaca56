#!/bin/bash
# The role the scale profile's replica streams as (REPLICATION, LOGIN).
#
# Run by the postgres image once, when it creates the data directory
# (/docker-entrypoint-initdb.d), and by deploy/compose/postgres/
# replica-entrypoint.sh against the primary before each first copy (PGHOST
# set), for a data directory created before this script existed. Idempotent.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --no-psqlrc \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v password="${POSTGRES_REPLICATION_PASSWORD:-replicator}" <<'SQL'
SELECT format('CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD %L', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator')
\gexec
SQL
