"""Races, with real threads and real row locks: PostgreSQL only.

Each thread has its own database connection; `transaction=True` lets the
threads see each other's commits (the test is not wrapped in a transaction).
"""

import pytest
from django.db import connection, transaction
from django.db.utils import OperationalError

from core.testing import run_together
from inventory import services
from inventory.exceptions import InsufficientStock
from inventory.models import Product
from orders.tests.factories import OrderFactory

from .factories import ProductFactory
from .helpers import assert_ledger_explains

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_forty_reservations_of_one_against_ten_in_stock_give_exactly_ten():
    product = ProductFactory(stock=10)
    orders = [OrderFactory() for _ in range(40)]

    def reserve(i):
        return services.stock_reserve(order=orders[i], lines={product.pk: 1})

    results = run_together(40, reserve)
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(results) - len(failures) == 10
    assert all(isinstance(f, InsufficientStock) for f in failures), failures
    product.refresh_from_db()
    assert (product.stock_on_hand, product.stock_reserved) == (10, 10)
    assert_ledger_explains(product)


def test_products_reserved_in_opposite_orders_do_not_deadlock():
    a, b = ProductFactory(stock=100), ProductFactory(stock=100)
    orders = [OrderFactory() for _ in range(20)]

    def reserve(i):
        # Half the threads name b first. Dicts keep insertion order, so a
        # service that locked in the order given would deadlock here.
        lines = {a.pk: 1, b.pk: 1} if i % 2 else {b.pk: 1, a.pk: 1}
        with transaction.atomic():
            movements = services.stock_reserve(order=orders[i], lines=lines)
            # Hold the locks a moment so the transactions overlap.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(0.02)")
        return movements

    results = run_together(20, reserve)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    assert not any(isinstance(r, OperationalError) for r in results)
    for product in (a, b):
        product.refresh_from_db()
        assert product.stock_reserved == 20
        assert_ledger_explains(product)


def test_concurrent_adjustments_never_take_on_hand_below_reserved(staff_user):
    product = ProductFactory(stock=10)
    services.stock_reserve(order=OrderFactory(), lines={product.pk: 4})

    def damage(i):
        return services.stock_adjust(product=product, delta=-1, reason="damage", actor=staff_user)

    results = run_together(10, damage)
    assert sum(not isinstance(r, Exception) for r in results) == 6
    assert all(isinstance(r, InsufficientStock) for r in results if isinstance(r, Exception))
    product = Product.objects.get(pk=product.pk)
    assert (product.stock_on_hand, product.stock_reserved) == (4, 4)
    assert_ledger_explains(product)


def test_a_release_racing_a_consume_happens_once_under_the_order_lock():
    """The orders service holds the order's row lock while it releases or
    consumes; with it, two racing moves act on the reservation once."""
    product = ProductFactory(stock=10)
    order = OrderFactory()
    services.stock_reserve(order=order, lines={product.pk: 3})

    def move(i):
        with transaction.atomic():
            type(order).objects.select_for_update().get(pk=order.pk)
            if i % 2:
                return services.stock_release(order=order)
            return services.stock_consume(order=order)

    results = run_together(6, move)
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(bool(r) for r in results) == 1
    product.refresh_from_db()
    assert product.stock_reserved == 0
    assert product.stock_on_hand in (7, 10)
    assert_ledger_explains(product)
