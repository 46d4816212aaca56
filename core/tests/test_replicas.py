"""Read replicas with read-your-writes (SPEC §12), against a real streaming
replica of the test server (bin/pg-replica, started by the `replica_alias`
fixture and by CI).

The replica's WAL replay is paused where a test needs it behind the primary:
then a read that sees a fresh write came from the primary and one that
misses it came from the replica, whatever Django believes it did."""

import contextlib
import logging
import re
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connections, transaction
from django.db.utils import Error
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import StaffFactory, UserFactory
from core import replicas
from core.testing import client_for
from inventory.tests.factories import ProductFactory
from orders import services as order_services
from orders.models import Order

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.replica,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, databases=["default", "replica1"]),
]

PG_REPLICA = Path(__file__).resolve().parents[2] / "bin" / "pg-replica"


def replica_admin(alias: str) -> psycopg.Connection:
    """A superuser session on the replica's server, outside Django."""
    settings_dict = connections[alias].settings_dict
    return psycopg.connect(
        host=settings_dict["HOST"],
        port=settings_dict["PORT"],
        user="postgres",
        dbname="postgres",
        autocommit=True,
    )


def wait_replayed(alias: str, timeout: float = 10.0) -> None:
    """Until the replica has replayed everything the primary wrote so far."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        (lsn,) = cursor.fetchone()
    deadline = time.monotonic() + timeout
    with replica_admin(alias) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]).fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the replica did not catch up")


@contextlib.contextmanager
def replay_paused(alias: str):
    """The replica stops applying the primary's changes (it still receives them)."""
    wait_replayed(alias)
    with replica_admin(alias) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")
    wait_replayed(alias)


def listed_ids(client, path="/api/v1/orders/") -> set[int]:
    response = client.get(path)
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["results"]}


@pytest.fixture
def shop(replica):
    product = ProductFactory(stock=50)
    staff = StaffFactory(is_superuser=True)
    customer = UserFactory()
    first = order_services.order_place(
        customer=customer, items=[{"product_id": product.pk, "quantity": 1}], actor=customer
    )
    wait_replayed(replica)
    return {"product": product, "staff": staff, "customer": customer, "first": first}


def test_lists_read_the_replica_and_a_writer_reads_their_own_write(replica, shop, settings):
    settings.REPLICA_MAX_LAG_SECONDS = 3600  # paused replay is lag: keep the replica usable
    settings.REPLICA_PIN_SECONDS = 2
    customer, staff = shop["customer"], shop["staff"]
    customer_client, staff_client = client_for(customer), client_for(staff)
    with replay_paused(replica):
        response = customer_client.post(
            "/api/v1/orders/",
            {"items": [{"product_id": shop["product"].pk, "quantity": 2}]},
            format="json",
        )
        assert response.status_code == 201, response.content
        placed = response.json()["id"]

        # The writer is pinned to the primary: their next reads see the order.
        assert placed in listed_ids(customer_client)
        assert customer_client.get(f"/api/v1/orders/{placed}/").status_code == 200
        # Everyone else reads the replica, which has not replayed it yet.
        assert listed_ids(staff_client) == {shop["first"].pk}
        # Once the pin has lapsed, the writer reads the replica too.
        time.sleep(settings.REPLICA_PIN_SECONDS + 0.2)
        assert listed_ids(customer_client) == {shop["first"].pk}
    # Replayed: the replica has it for everyone.
    assert listed_ids(staff_client) == {shop["first"].pk, placed}


def test_each_lag_tolerant_read_goes_to_the_replica(replica, shop, admin_client):
    product, staff = shop["product"], shop["staff"]
    staff_client = client_for(staff)
    order_id = shop["first"].pk
    paths = [
        "/api/v1/orders/",
        "/api/v1/products/",
        f"/api/v1/products/{product.pk}/stock-movements/",
        f"/api/v1/orders/{order_id}/events/",
    ]
    for path in paths:
        with CaptureQueriesContext(connections[replica]) as on_replica:
            response = staff_client.get(path)
        assert response.status_code == 200, (path, response.content)
        assert len(on_replica) >= 1, path
    # The back office: the dashboard and the CSV export.
    with CaptureQueriesContext(connections[replica]) as on_replica:
        assert admin_client.get("/admin/").status_code == 200
    assert any("orders_order" in query["sql"] for query in on_replica.captured_queries)
    with CaptureQueriesContext(connections[replica]) as on_replica:
        response = admin_client.get("/admin/orders/order/export/")
        body = b"".join(response.streaming_content).decode()
    assert f"\n{order_id}," in body
    assert any("orders_order" in query["sql"] for query in on_replica.captured_queries)


def test_the_replica_server_really_answers_the_lists(replica, shop):
    """Seen from the replica's own statistics, not from Django."""
    name = connections[replica].settings_dict["NAME"]

    def commits_on_replica() -> int:
        with replica_admin(replica) as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                [name],
            ).fetchone()
        return row[0]

    before = commits_on_replica()
    staff_client = client_for(shop["staff"])
    for _ in range(5):
        listed_ids(staff_client)
    connections[replica].close()  # a backend reports its statistics as it ends
    deadline = time.monotonic() + 5
    while commits_on_replica() < before + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert commits_on_replica() >= before + 5


def test_a_replica_lagging_past_the_limit_is_skipped(replica, shop, settings, caplog):
    settings.REPLICA_MAX_LAG_SECONDS = 0.5
    settings.REPLICA_CHECK_SECONDS = 0
    staff_client = client_for(shop["staff"])
    with replay_paused(replica):
        # Written by the service (no request, so no one is pinned).
        late = order_services.order_place(
            customer=shop["customer"],
            items=[{"product_id": shop["product"].pk, "quantity": 1}],
            actor=shop["customer"],
        )
        time.sleep(1.0)
        with caplog.at_level(logging.WARNING, logger="core.replicas"):
            assert listed_ids(staff_client) == {shop["first"].pk, late.pk}
        assert "Replica replica1 skipped" in caplog.text and "lagging" in caplog.text
        ready = client_for(shop["staff"]).get("/readyz")
        assert ready.status_code == 200
        report = ready.json()["replicas"][replica]
        assert report["status"] == "skipped" and report["reason"] == "lagging"
        assert report["lag_seconds"] > 0.5
    # Caught up: back on the replica (with room for other tests' writes).
    settings.REPLICA_MAX_LAG_SECONDS = 30
    with CaptureQueriesContext(connections[replica]) as on_replica:
        listed_ids(staff_client)
    assert len(on_replica) >= 1


def test_a_replica_stopped_mid_run_changes_nothing_for_clients(replica, shop, settings, caplog):
    settings.REPLICA_CHECK_SECONDS = 3600  # the replica was fine when last checked
    staff_client = client_for(shop["staff"])
    expected = {shop["first"].pk}
    with CaptureQueriesContext(connections[replica]) as on_replica:
        assert listed_ids(staff_client) == expected
    assert len(on_replica) >= 1  # a persistent connection to it is open now
    subprocess.run(["bash", str(PG_REPLICA), "stop"], check=True, capture_output=True)
    try:
        with caplog.at_level(logging.WARNING, logger="core.replicas"):
            for path in ["/api/v1/orders/", "/api/v1/products/"]:
                assert staff_client.get(path).status_code == 200
            assert listed_ids(staff_client) == expected
        assert "Replica replica1 skipped" in caplog.text
        # /readyz says what the process saw: a read failed on the replica;
        # once the state is due for a check again, that it does not answer.
        for reason, check_seconds in [("read failed", 3600), ("unavailable", 0)]:
            settings.REPLICA_CHECK_SECONDS = check_seconds
            ready = staff_client.get("/readyz")
            assert ready.status_code == 200
            report = ready.json()["replicas"][replica]
            assert report["status"] == "skipped" and report["reason"] == reason
            assert "5433" not in ready.content.decode()  # no address nor error text
    finally:
        subprocess.run(["bash", str(PG_REPLICA), "start"], check=True, capture_output=True)
    settings.REPLICA_CHECK_SECONDS = 0
    with CaptureQueriesContext(connections[replica]) as on_replica:
        assert listed_ids(staff_client) == expected
    assert len(on_replica) >= 1


def test_readyz_and_metrics_report_a_healthy_replica(replica, shop, settings):
    # Other workers' tests write to the same server meanwhile: a few
    # milliseconds of lag may show.
    response = client_for(shop["staff"]).get("/readyz")
    assert response.status_code == 200
    report = response.json()["replicas"]
    assert list(report) == [replica]
    assert report[replica]["status"] == "ok" and 0 <= report[replica]["lag_seconds"] < 5
    settings.METRICS_TOKEN = "scrape-token"
    metrics = client_for(shop["staff"]).get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token")
    assert metrics.status_code == 200
    text = metrics.content.decode()
    assert 'db_replica_usable{replica="replica1"} 1.0' in text
    lag = re.search(r'^db_replica_lag_seconds\{replica="replica1"\} (\S+)$', text, re.M)
    assert lag and 0 <= float(lag.group(1)) < 5


def test_writes_and_transactions_stay_on_the_primary(replica, shop):
    product = shop["product"]
    # An instance read from the replica saves to the primary.
    loaded = replicas.read_with_fallback(lambda: type(product).objects.get(pk=product.pk))
    assert loaded._state.db == replica
    loaded.name = "Renamed"
    loaded.save(update_fields=["name"])
    assert type(product).objects.using("default").get(pk=product.pk).name == "Renamed"
    # A write sent to the replica explicitly fails there.
    with pytest.raises(Error, match="read-only"):
        type(product).objects.using(replica).filter(pk=product.pk).update(name="Nope")
    # Inside a transaction a lag-tolerant read sees the transaction's own writes.
    with transaction.atomic():
        draft = order_services.order_place(
            customer=shop["customer"],
            items=[{"product_id": product.pk, "quantity": 1}],
            actor=shop["customer"],
        )
        seen = replicas.read_with_fallback(lambda: set(Order.objects.values_list("pk", flat=True)))
        assert draft.pk in seen
        transaction.set_rollback(True)


def test_a_pin_lives_in_redis_for_every_process(replica, settings):
    from django.core.cache import cache

    from core.cache import redis_client

    settings.REPLICA_PIN_SECONDS = 7
    user = UserFactory()
    assert not replicas.is_pinned(user.pk)
    replicas.pin_to_primary(user.pk)
    assert replicas.is_pinned(user.pk)
    ttl = redis_client(cache).ttl(cache.make_and_validate_key(f"replica-pin:{user.pk}"))
    assert 5 <= ttl <= 7
    assert replicas.read_alias(user) == "default"
    assert replicas.read_alias(UserFactory()) == replica
