"""A worker killed with SIGKILL in the middle of a processing batch (issue 8):
no order is left half-moved, and the next run processes the rest, each once.

The victim is a separate process running the processing run on the test
database; it is killed while PostgreSQL shows its batch transaction open.
A batch is one transaction, so what the kill leaves is whole batches."""

import io
import os
import signal
import subprocess
import sys
import time

import pytest
from django.core.management import call_command
from django.db import connection

from core.testing import BASE_DIR
from inventory.models import Product
from inventory.tests.helpers import assert_ledger_explains
from orders import processing
from orders.models import Order, OrderEmail, OrderEvent
from orders.statuses import OrderStatus

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ORDERS = 3000
BATCH = 1000
VICTIM = "orders-victim-worker"

RUN = f"""
import django
django.setup()
from orders import processing
processing.process_pending_orders(batch_size={BATCH}, time_budget=600)
"""


def victim_transaction_open() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND xact_start IS NOT NULL AND pid <> pg_backend_pid()",
            [VICTIM],
        )
        return cursor.fetchone()[0] > 0


def victim_rolled_back() -> bool:
    """No transaction of the victim's is open any more. Connected directly,
    its server process ends; through PgBouncer the server connection stays
    in the pool, rolled back (DATABASE_POOLER=pgbouncer, CI runs this there too),
    and may serve this test's own query still named after the victim: hence
    `pid <> pg_backend_pid()`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND xact_start IS NOT NULL AND pid <> pg_backend_pid()",
            [VICTIM],
        )
        return cursor.fetchone()[0] == 0


def wait_for(condition, timeout: float, step: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def moved_counts() -> dict:
    return {
        "processing": Order.objects.filter(status=OrderStatus.PROCESSING).count(),
        "events": OrderEvent.objects.filter(type=OrderEvent.Type.STATUS_CHANGED).count(),
        "emails": OrderEmail.objects.count(),
    }


def test_a_worker_killed_mid_batch_leaves_whole_batches_and_the_rest_is_done_once():
    call_command(
        "seed_demo",
        orders=ORDERS,
        status="pending",
        seed=3,
        not_production=True,
        stdout=io.StringIO(),
    )
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}?application_name={VICTIM}"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    env.update(
        DJANGO_SETTINGS_MODULE="orders_project.settings",
        DEBUG="1",
        DATABASE_URL=url,
        EMAIL_URL="memorymail://",
    )
    victim = subprocess.Popen(
        [sys.executable, "-c", RUN], cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL
    )
    try:
        # Let one batch commit first, so the kill lands in a later one.
        assert wait_for(
            lambda: Order.objects.filter(status=OrderStatus.PROCESSING).exists(), timeout=60
        ), "the victim never committed a batch"
        assert wait_for(victim_transaction_open, timeout=30), "no batch transaction seen"
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    # PostgreSQL rolls the victim's transaction back when it notices the dead client.
    assert wait_for(victim_rolled_back, timeout=30, step=0.05)

    after_kill = moved_counts()
    assert after_kill["processing"] % BATCH == 0  # whole batches only
    assert 0 < after_kill["processing"] < ORDERS, after_kill
    assert after_kill["events"] == after_kill["emails"] == after_kill["processing"]

    run = processing.process_pending_orders(batch_size=BATCH, time_budget=600)

    assert run.processed == ORDERS - after_kill["processing"]
    assert run.failed == 0
    assert moved_counts() == {"processing": ORDERS, "events": ORDERS, "emails": ORDERS}
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.PROCESSING}
    for product in Product.objects.all():
        assert_ledger_explains(product)
