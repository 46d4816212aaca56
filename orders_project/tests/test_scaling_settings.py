"""The environment of SPEC §12: replicas, PgBouncer and psycopg's pool, as
settings.py builds them (each read in a fresh process)."""

import json

import pytest
from django.db import connection

from core.testing import run_python, settings_of

from .test_settings import PRODUCTION

pytestmark = pytest.mark.slow

POSTGRES = {**PRODUCTION, "DATABASE_URL": "postgres://u:p@primary.internal:5432/shop"}


def test_each_replica_url_becomes_a_read_only_alias_mirroring_the_primary():
    env = {
        **POSTGRES,
        "REDIS_URL": "redis://cache.internal:6379/0",
        "DATABASE_REPLICA_URLS": "postgres://r:s@replica-a:5432/shop,postgres://r:s@replica-b/shop",
    }
    got = settings_of(
        env,
        "DATABASE_REPLICAS",
        "DATABASES['replica2']['HOST']",
        "DATABASES['replica1']['OPTIONS']",
        "DATABASES['replica1']['TEST']['MIRROR']",
        "DATABASES['replica1']['CONN_MAX_AGE']",
        "DATABASE_ROUTERS",
        "REPLICA_PIN_SECONDS",
        "REPLICA_MAX_LAG_SECONDS",
    )
    assert got["DATABASE_REPLICAS"] == "['replica1', 'replica2']"
    assert got["DATABASES['replica2']['HOST']"] == "'replica-b'"
    assert "default_transaction_read_only=on" in got["DATABASES['replica1']['OPTIONS']"]
    assert "'connect_timeout': 2" in got["DATABASES['replica1']['OPTIONS']"]
    assert got["DATABASES['replica1']['TEST']['MIRROR']"] == "'default'"
    assert got["DATABASES['replica1']['CONN_MAX_AGE']"] == "60"
    assert got["DATABASE_ROUTERS"] == "['core.replicas.PrimaryReplicaRouter']"
    assert got["REPLICA_PIN_SECONDS"] == "10"
    assert got["REPLICA_MAX_LAG_SECONDS"] == "30.0"


def test_by_default_no_replicas_no_pooler_no_pool():
    got = settings_of(
        POSTGRES,
        "DATABASE_REPLICAS",
        "DATABASES.keys()",
        "DATABASES['default'].get('DISABLE_SERVER_SIDE_CURSORS')",
        "DATABASES['default']['CONN_MAX_AGE']",
        "DATABASES['default']['OPTIONS'].get('pool')",
    )
    assert list(got.values()) == ["[]", "dict_keys(['default'])", "None", "60", "None"]


def test_pgbouncer_turns_off_server_side_cursors_and_prepared_statements():
    got = settings_of(
        {**POSTGRES, "DATABASE_POOLER": "pgbouncer"},
        "DATABASES['default']['DISABLE_SERVER_SIDE_CURSORS']",
        "DATABASES['default']['OPTIONS']['prepare_threshold']",
    )
    assert list(got.values()) == ["True", "None"]


def test_the_pool_replaces_persistent_connections():
    got = settings_of(
        {**POSTGRES, "DATABASE_POOL": "1", "DATABASE_POOL_MAX_SIZE": "6"},
        "DATABASES['default']['CONN_MAX_AGE']",
        "DATABASES['default']['OPTIONS']['pool']",
    )
    assert list(got.values()) == ["0", "{'min_size': 2, 'max_size': 6, 'timeout': 5.0}"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DATABASE_REPLICA_URLS": "postgres://r@replica/shop", "REDIS_URL": ""},
            "needs REDIS_URL",
        ),
        (
            {"DATABASE_POOLER": "pgbouncer", "DATABASE_POOL": "1"},
            "pool twice",
        ),
        ({"DATABASE_POOLER": "pgpool"}, "DATABASE_POOLER must be"),
        (
            {"DATABASE_URL": "", "DEBUG": "1", "DATABASE_POOL": "1"},
            "need a PostgreSQL DATABASE_URL",
        ),
        (
            {"REDIS_URL": "redis://r", "DATABASE_REPLICA_URLS": "mysql://r@replica/shop"},
            "must be postgres:// URLs",
        ),
    ],
)
def test_inconsistent_settings_refuse_to_start(env, message):
    result = run_python(["manage.py", "check"], **{**POSTGRES, **env})
    assert result.returncode != 0
    assert message in result.stderr


POOL_RUN = """
import json, threading
import django
django.setup()
from django.db import connection

def work():
    for _ in range(20):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        connection.close()  # hands the connection back to the pool

threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(connection.pool.get_stats()))
"""


@pytest.mark.postgres
@pytest.mark.django_db
def test_with_the_pool_many_requests_share_a_few_connections():
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    result = run_python(
        ["-c", POOL_RUN],
        DATABASE_URL=url,
        DATABASE_POOL="1",
        DATABASE_POOL_MAX_SIZE="4",
        DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert stats["requests_num"] >= 160
    assert stats["connections_num"] <= 4


def test_the_pods_own_address_is_an_allowed_host():
    ipv4 = settings_of({**POSTGRES, "POD_IP": "10.2.3.4"}, "ALLOWED_HOSTS")
    assert ipv4 == {"ALLOWED_HOSTS": "['orders.example.com', '10.2.3.4']"}
    ipv6 = settings_of({**POSTGRES, "POD_IP": "fd00::7"}, "ALLOWED_HOSTS")
    assert ipv6 == {"ALLOWED_HOSTS": "['orders.example.com', '[fd00::7]']"}
