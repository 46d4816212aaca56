"""End to end with a real Celery worker on the Redis broker: an order placed
over the API becomes `processing` and its customer gets the confirmation, all
through the broker. PostgreSQL and Redis (CI has both)."""

import time

import pytest
from django.conf import settings
from django.core import mail

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import bearer_client
from core.request_id import reset_request_id, set_request_id
from core.testing.workers import embedded_worker, isolated_queues
from inventory.tests.factories import ProductFactory
from orders.models import Order, OrderEmail, OrderEvent
from orders.statuses import OrderStatus
from orders.tasks import process_pending_orders
from orders_project.celery import app

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def worker():
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("this test needs the Redis broker: set REDIS_URL")
    # Queues of its own (routed as in production), so nothing else on this
    # Redis is consumed or left behind; one worker serves them all.
    with (
        isolated_queues(app, "test-e2e") as queues,
        embedded_worker(app, list(queues.values()), concurrency=2) as running,
    ):
        yield running


def test_an_order_placed_over_the_api_is_processed_by_a_worker_and_confirmed(worker, log_lines):
    customer = UserFactory()
    product = ProductFactory(stock=5)
    response = bearer_client(customer).post(
        "/api/v1/orders/",
        {"items": [{"product_id": product.pk, "quantity": 2}]},
        format="json",
    )
    assert response.status_code == 201, response.content
    order_id = response.json()["id"]
    assert Order.objects.get(pk=order_id).status == OrderStatus.PENDING

    # What beat does every ORDER_PROCESSING_INTERVAL seconds, with a request id
    # bound as if an operator had triggered it from a request.
    token = set_request_id("e2e-run-1")
    try:
        process_pending_orders.delay()
    finally:
        reset_request_id(token)

    assert wait_for(lambda: OrderEmail.objects.filter(sent_at__isnull=False).exists())
    assert Order.objects.get(pk=order_id).status == OrderStatus.PROCESSING
    assert list(
        OrderEvent.objects.filter(
            order_id=order_id, type=OrderEvent.Type.STATUS_CHANGED
        ).values_list("from_status", "to_status", "actor")
    ) == [(OrderStatus.PENDING, OrderStatus.PROCESSING, None)]
    assert [m.to for m in mail.outbox] == [[customer.email]]
    assert mail.outbox[0].subject == f"Your order #{order_id} is being processed"
    # The worker's log lines carry the id of the request that enqueued the work,
    # through the processing task and on to the e-mail task it enqueued.
    assert any(
        "[e2e-run-1] orders.tasks: Processed 1 pending orders" in line for line in log_lines()
    ), log_lines()
