"""Celery queues by workload (SPEC §12, docs/background-work.md): every task
goes to `orders`, `notifications`, `webhooks` or `maintenance` by Celery's
own routing; the Procfile runs one worker per queue and beat once; and, with
real workers on the Redis broker, a webhook receiver that hangs does not
delay order processing."""

import contextlib
import shlex
import threading
import time

import pytest
from celery.signals import task_prerun
from django.conf import settings
from honcho.environ import parse_procfile

from accounts.tests.factories import UserFactory
from core.testing import BASE_DIR
from core.testing.workers import embedded_worker, isolated_queues
from inventory.tests.factories import ProductFactory
from orders.models import Order
from orders.statuses import OrderStatus
from orders.tasks import process_pending_orders
from orders.tests.factories import place_order
from orders_project.celery import app
from webhooks import kick, services
from webhooks.tasks import deliver_webhooks
from webhooks.tests.receiver import Answer, Receiver

QUEUES = settings.CELERY_QUEUES_BY_WORKLOAD

# The contract, task by task. A new task fails the first test until it is
# given its queue here and in CELERY_TASK_ROUTES.
EXPECTED = {
    "orders.tasks.process_pending_orders": "orders",
    "orders.tasks.send_order_emails": "notifications",
    "accounts.tasks.sms_send": "notifications",
    "accounts.tasks.sms_sweep": "notifications",
    "webhooks.tasks.deliver_webhooks": "webhooks",
    "backups.tasks.copy_orders": "maintenance",
    "backups.tasks.export_orders": "maintenance",
    "inventory.tasks.send_low_stock_report": "maintenance",
    "orders.tasks.housekeeping": "maintenance",
    "accounts.tasks.housekeeping": "maintenance",
    "webhooks.tasks.housekeeping": "maintenance",
}


def routed_queue(task_name: str) -> str:
    """The queue Celery's router sends `task_name` to (what `delay()` does)."""
    return app.amqp.router.route({}, task_name, (), {})["queue"].name


def test_every_project_task_is_routed_by_its_name_to_its_workload_queue():
    app.loader.import_default_modules()
    project_tasks = {name for name in app.tasks if not name.startswith("celery.")}

    assert project_tasks == set(EXPECTED)
    assert {name: routed_queue(name) for name in sorted(project_tasks)} == EXPECTED
    # Each by its exact name (no glob to catch a task of another workload),
    # and no route for a task that does not exist (a typo routes nothing).
    assert set(settings.CELERY_TASK_ROUTES) == project_tasks


def test_a_task_without_a_route_goes_to_a_queue_that_a_worker_consumes():
    assert QUEUES == ("orders", "notifications", "webhooks", "maintenance")
    assert settings.CELERY_TASK_DEFAULT_QUEUE == "maintenance"
    assert routed_queue("celery.accumulate") == "maintenance"  # Celery's own task
    # Declared, so a worker started without -Q serves all four.
    assert list(app.conf.task_queues) == list(QUEUES)


def procfile() -> dict[str, list[str]]:
    with (BASE_DIR / "Procfile").open() as file:
        return {
            name: shlex.split(command)
            for name, command in parse_procfile(file.read()).processes.items()
        }


def option(args: list[str], *names: str) -> str | None:
    for index, arg in enumerate(args):
        if arg in names:
            return args[index + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def test_the_procfile_runs_a_worker_per_queue_and_beat_once():
    processes = procfile()
    workers = {name: args for name, args in processes.items() if "worker" in args}
    beats = [name for name, args in processes.items() if "beat" in args]

    served = {name: option(args, "-Q", "--queues").split(",") for name, args in workers.items()}
    assert served == {f"worker-{queue}": [queue] for queue in QUEUES}
    assert beats == ["beat"]
    for name, args in workers.items():
        assert not {"-B", "--beat"} & set(args), f"{name} runs a beat of its own"
        # Each its own node name: four workers on one host.
        assert option(args, "-n", "--hostname") == f"{name.removeprefix('worker-')}@%h"


# --- A slow webhook receiver, real workers ---------------------------------------------


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


class HangingReceiver(Receiver):
    """Every webhook request hangs until `release()` (or a minute: far longer
    than these tests take)."""

    def __init__(self):
        super().__init__()
        self.released = threading.Event()
        self.answered = 0
        self.answer = self._hang

    def _hang(self, request):
        self.released.wait(60)
        self.answered += 1
        return Answer()

    def release(self):
        self.released.set()


@pytest.fixture
def receiver(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # it listens on 127.0.0.1
    settings.WEBHOOK_TIMEOUT = 60  # the worker waits for the receiver all along
    # Deliveries are started by the test (what beat's sweep does), not by the
    # kick after each commit: no message can go to a queue outside the test's.
    monkeypatch.setattr(kick, "_send", lambda: None)
    receiver = HangingReceiver()
    services.subscription_create(url=receiver.url, events=["*"])
    yield receiver
    receiver.release()
    receiver.close()
    kick.forget_subscribers()


@pytest.fixture
def ran():
    """(task, the queue it came from, the thread that ran it) of each task
    run by the test's workers."""
    runs = []

    def record(task=None, **kwargs):
        queue = (task.request.delivery_info or {}).get("routing_key")
        runs.append((task.name, queue, threading.get_ident()))

    task_prerun.connect(record, weak=False)
    yield runs
    task_prerun.disconnect(record)


@contextlib.contextmanager
def workers(receiver, **serving: list[str]):
    """One worker per keyword, named after it, serving the test's copies of
    the queues listed. One thread each, so that one hanging send occupies a
    whole worker (the Procfile's have two: two hanging receivers would). At
    the end the receiver answers first, so the workers can finish and stop."""
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("this test needs the Redis broker: set REDIS_URL")
    with contextlib.ExitStack() as stack:
        queues = stack.enter_context(isolated_queues(app, "test-queues"))
        for name, served in serving.items():
            stack.enter_context(
                embedded_worker(app, [queues[queue] for queue in served], hostname=f"{name}@test")
            )
        stack.callback(receiver.release)
        yield queues


def pending_orders(count: int) -> list[int]:
    product = ProductFactory(stock=50)
    return [place_order(UserFactory(), (product, 1)).pk for _ in range(count)]


def all_processing(ids: list[int]) -> bool:
    moved = Order.objects.filter(pk__in=ids, status=OrderStatus.PROCESSING).count()
    return moved == len(ids)


def waiting(queue: str) -> int:
    with app.connection_for_write() as connection:
        return connection.default_channel.queue_declare(queue=queue, passive=True).message_count


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_webhook_receiver_that_hangs_does_not_delay_order_processing(receiver, ran):
    with workers(receiver, webhooks=["webhooks"], orders=["orders"]) as queues:
        ids = pending_orders(3)
        for _ in range(3):
            deliver_webhooks.delay()
        # The webhooks worker's only thread is in the first send, which hangs;
        # the other runs wait in its queue.
        receiver.wait_for(1, timeout=30)

        started = time.monotonic()
        process_pending_orders.delay()
        # The receiver hangs up to 60 s: processing done while it still hangs
        # (asserted below) is the proof; the 20 s only bound a loaded machine.
        assert wait_for(lambda: all_processing(ids), timeout=20), "processing waited"
        took = time.monotonic() - started

        # All the while the receiver hung, unanswered, with the webhooks
        # worker busy: the orders went through beside it, not after it.
        assert receiver.answered == 0 and len(receiver.received) == 1
        assert waiting(queues["webhooks"]) >= 1
        runs = list(ran)
    assert took < 20
    ((_, sending_queue, sending_thread),) = [run for run in runs if run[0] == deliver_webhooks.name]
    ((_, processing_queue, processing_thread),) = [
        run for run in runs if run[0] == process_pending_orders.name
    ]
    assert (sending_queue, processing_queue) == (queues["webhooks"], queues["orders"])
    assert sending_thread != processing_thread


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_one_worker_for_both_queues_the_same_receiver_would_hold_processing(receiver, ran):
    """The counter-test: the setup above, but the two queues on one worker
    with one thread. Processing then waits for the hanging send, so the test
    above would fail if the queues were not apart."""
    with workers(receiver, shared=["webhooks", "orders"]) as queues:
        ids = pending_orders(3)
        deliver_webhooks.delay()
        receiver.wait_for(1, timeout=30)

        process_pending_orders.delay()
        assert not wait_for(lambda: all_processing(ids), timeout=2)
        assert Order.objects.filter(pk__in=ids, status=OrderStatus.PENDING).count() == 3

        receiver.release()  # the send returns: the worker takes the processing run
        assert wait_for(lambda: all_processing(ids), timeout=10)
    # Taken from its queue by the one thread, after the send it waited for.
    sending, processing = (
        next(run for run in ran if run[0] == task.name)
        for task in (deliver_webhooks, process_pending_orders)
    )
    assert (sending[1], processing[1]) == (queues["webhooks"], queues["orders"])
    assert sending[2] == processing[2]
