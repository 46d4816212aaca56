"""core.fields.StampField on the orders' times: Django's auto_now(_add),
except that an insert keeps a time it is given (what a restore relies on)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from orders.models import Order, OrderEvent

pytestmark = pytest.mark.django_db

THEN = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)


def new_order(**times) -> Order:
    return Order(customer=UserFactory(), total=0, shipping_address="1 Main St", **times)


def test_a_new_row_without_times_gets_now():
    before = timezone.now()
    order = new_order()
    order.save()
    assert before <= order.created_at <= timezone.now()
    assert before <= order.updated_at <= timezone.now()


def test_an_insert_keeps_the_times_it_is_given_one_by_one_and_in_bulk():
    single = new_order(created_at=THEN, updated_at=THEN + timedelta(days=1))
    single.save()
    bulk = new_order(created_at=THEN, updated_at=THEN)
    Order.objects.bulk_create([bulk])
    OrderEvent.objects.bulk_create([OrderEvent(order=bulk, type="created", created_at=THEN)])

    stored = Order.objects.in_bulk([single.pk, bulk.pk])
    assert stored[single.pk].created_at == THEN
    assert stored[single.pk].updated_at == THEN + timedelta(days=1)
    assert (stored[bulk.pk].created_at, stored[bulk.pk].updated_at) == (THEN, THEN)
    assert OrderEvent.objects.get(order=bulk).created_at == THEN


def test_an_update_moves_updated_at_to_now_and_leaves_created_at():
    order = new_order(created_at=THEN, updated_at=THEN)
    order.save()
    order.notes = "Ring twice"
    before = timezone.now()
    order.save()
    order.refresh_from_db()
    assert order.created_at == THEN
    assert order.updated_at >= before
