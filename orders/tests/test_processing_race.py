"""Several processing runs at once (several workers, two beats): each pending
order is moved by exactly one of them. Real threads and row locks: PostgreSQL."""

import pytest

from accounts.tests.factories import UserFactory
from core.testing import run_together
from inventory.tests.factories import ProductFactory
from inventory.tests.helpers import assert_ledger_explains
from orders import processing
from orders.models import Order, OrderEmail, OrderEvent
from orders.statuses import OrderStatus
from orders.tests.factories import place_order

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_runs_move_each_order_once_with_one_event_and_one_email():
    product = ProductFactory(stock=1000)
    customers = [UserFactory() for _ in range(5)]
    orders = [place_order(customers[i % 5], (product, 1)) for i in range(120)]

    runs = run_together(4, lambda i: processing.process_pending_orders(batch_size=7))

    assert not [r for r in runs if isinstance(r, Exception)], runs
    assert sum(r.processed for r in runs) == 120
    assert sum(r.failed for r in runs) == 0
    # Every run found work: they shared the backlog rather than waiting in line.
    assert all(r.processed > 0 for r in runs), [r.processed for r in runs]
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.PROCESSING}
    moved = OrderEvent.objects.filter(type=OrderEvent.Type.STATUS_CHANGED)
    assert moved.count() == 120
    assert sorted(moved.values_list("order_id", flat=True)) == sorted(o.pk for o in orders)
    assert OrderEmail.objects.count() == 120
    assert_ledger_explains(product)


def test_two_runs_racing_over_a_failing_order_fail_it_once():
    product = ProductFactory(stock=100)
    gone = UserFactory()
    failing = place_order(gone, (product, 5))
    for _ in range(30):
        place_order(UserFactory(), (product, 1))
    gone.is_active = False
    gone.save()

    runs = run_together(2, lambda i: processing.process_pending_orders(batch_size=4))

    assert not [r for r in runs if isinstance(r, Exception)], runs
    assert sum(r.failed for r in runs) == 1
    assert sum(r.processed for r in runs) == 30
    assert OrderEvent.objects.filter(order=failing, to_status=OrderStatus.FAILED).count() == 1
    product.refresh_from_db()
    assert product.stock_reserved == 30
    assert_ledger_explains(product)
