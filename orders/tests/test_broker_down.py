"""A broker that is down never slows or fails a request: placing an order does
not talk to the broker at all, and the next processing run finds the order in
the database (SPEC §7)."""

import time

import pytest
from django.core import mail

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import bearer_client
from inventory.tests.factories import ProductFactory
from orders import tasks
from orders.models import Order
from orders.statuses import OrderStatus

pytestmark = pytest.mark.django_db


def test_placing_an_order_with_the_broker_hanging_answers_at_once_and_is_processed_later(
    hanging_broker, celery_eager, django_capture_on_commit_callbacks
):
    celery_eager.conf.task_always_eager = False  # a real publish would hit the broker
    customer = UserFactory()
    product = ProductFactory(stock=3)
    client = bearer_client(customer)
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/orders/",
            {"items": [{"product_id": product.pk, "quantity": 1}]},
            format="json",
            HTTP_IDEMPOTENCY_KEY="broker-down-1",
        )
    elapsed = time.monotonic() - started

    assert response.status_code == 201, response.content
    assert elapsed < 1.0
    assert hanging_broker.connections == []  # the request never went near the broker
    order = Order.objects.get(pk=response.json()["id"])
    assert order.status == OrderStatus.PENDING

    # The broker is back; the next run of the schedule picks the order up.
    celery_eager.conf.task_always_eager = True
    with django_capture_on_commit_callbacks(execute=True):
        tasks.process_pending_orders.apply().get()
    order.refresh_from_db()
    assert order.status == OrderStatus.PROCESSING
    assert [m.to for m in mail.outbox] == [[customer.email]]
