"""Stock invariants under random sequences of operations (issue 8).

Hypothesis drives a state machine through placing, cancelling, processing,
shipping, delivering and failing orders, deactivating customers and
adjusting stock, in any order and with any quantities, and checks after
every step, for each product:

- reserved equals the quantities on its pending and processing orders;
- 0 <= reserved <= on hand;
- the ledger adds up to both figures.

Each step first works out from the state whether the rules must refuse it
(not enough stock, a move the status table forbids, an adjustment of the
wrong sign or below the reserved stock) and with which error, then checks
the service did exactly that: a refusal where the rules allow the step fails
the test as surely as a step that should have been refused.
"""

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from accounts.models import User
from accounts.tests.factories import StaffFactory, UserFactory
from inventory import services as inventory
from inventory.exceptions import InsufficientStock, InvalidAdjustment
from inventory.models import Product, StockMovement
from inventory.selectors import stock_ledger_totals
from inventory.tests.factories import ProductFactory
from orders import processing, services
from orders.exceptions import InvalidTransition
from orders.models import Order, OrderLine
from orders.statuses import HOLDING_STOCK, OrderStatus

pytestmark = pytest.mark.slow

PRODUCTS = 3
CUSTOMERS = 2


def available(product: Product) -> int:
    product.refresh_from_db()
    return product.stock_on_hand - product.stock_reserved


def status_of(order_id: int) -> str:
    return Order.objects.values_list("status", flat=True).get(pk=order_id)


class StockMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    @initialize(stocks=st.lists(st.integers(0, 12), min_size=PRODUCTS, max_size=PRODUCTS))
    def setup(self, stocks):
        # Each run has products of its own: what earlier runs left in the
        # database (the test transaction spans them all) is not checked.
        self.products = [ProductFactory(stock=stock) for stock in stocks]
        self.customers = [UserFactory() for _ in range(CUSTOMERS)]
        self.staff = StaffFactory()

    @rule(
        target=orders,
        customer=st.integers(0, CUSTOMERS - 1),
        lines=st.dictionaries(st.integers(0, PRODUCTS - 1), st.integers(1, 6), min_size=1),
    )
    def place(self, customer, lines):
        items = [
            {"product_id": self.products[index].pk, "quantity": quantity}
            for index, quantity in lines.items()
        ]
        short = any(quantity > available(self.products[index]) for index, quantity in lines.items())
        expected = InsufficientStock if short else None
        order = self._attempt(
            expected,
            services.order_place,
            customer=self.customers[customer],
            items=items,
            actor=self.customers[customer],
        )
        return multiple() if order is None else order.pk

    @rule(order=orders, by_staff=st.booleans())
    def cancel(self, order, by_staff):
        status = status_of(order)
        allowed = status == OrderStatus.PENDING or (by_staff and status == OrderStatus.PROCESSING)
        owner = Order.objects.get(pk=order).customer
        self._attempt(
            None if allowed else InvalidTransition,
            services.order_cancel,
            order=order,
            actor=self.staff if by_staff else owner,
        )

    @rule(batch_size=st.integers(1, 4))
    def process(self, batch_size):
        processing.process_pending_batch(batch_size=batch_size)

    @rule(order=orders)
    def ship(self, order):
        self._move(order, OrderStatus.SHIPPED, self.staff, allowed_from={OrderStatus.PROCESSING})

    @rule(order=orders)
    def deliver(self, order):
        self._move(order, OrderStatus.DELIVERED, self.staff, allowed_from={OrderStatus.SHIPPED})

    @rule(order=orders)
    def fail(self, order):
        # Only the system fails orders.
        self._move(order, OrderStatus.FAILED, None, allowed_from=set(HOLDING_STOCK))

    @rule(customer=st.integers(0, CUSTOMERS - 1))
    def deactivate(self, customer):
        # As staff do in the admin; the next processing run fails this
        # customer's pending orders.
        User.objects.filter(pk=self.customers[customer].pk).update(is_active=False)

    @rule(
        product=st.integers(0, PRODUCTS - 1),
        delta=st.integers(-8, 8).filter(bool),
        reason=st.sampled_from(["restock", "return", "damage", "correction"]),
    )
    def adjust(self, product, delta, reason):
        product = self.products[product]
        product.refresh_from_db()
        if (reason in ("restock", "return") and delta < 0) or (reason == "damage" and delta > 0):
            expected = InvalidAdjustment
        elif product.stock_on_hand + delta < product.stock_reserved:
            expected = InsufficientStock
        else:
            expected = None
        self._attempt(
            expected,
            inventory.stock_adjust,
            product=product,
            delta=delta,
            reason=reason,
            actor=self.staff,
        )

    def _move(self, order, to_status, actor, *, allowed_from):
        expected = None if status_of(order) in allowed_from else InvalidTransition
        self._attempt(
            expected, services.order_transition, order=order, to_status=to_status, actor=actor
        )

    @staticmethod
    def _attempt(expected, service, **kwargs):
        """Call the service; it must raise `expected` (an error class), or
        nothing when `expected` is None."""
        if expected is None:
            return service(**kwargs)
        with pytest.raises(expected):
            service(**kwargs)
        return None

    @invariant()
    def stock_adds_up(self):
        if not hasattr(self, "products"):
            return
        for product in Product.objects.filter(pk__in=[p.pk for p in self.products]):
            held = OrderLine.objects.filter(
                product=product, order__status__in=HOLDING_STOCK
            ).aggregate(units=Sum("quantity", default=0))["units"]
            assert product.stock_reserved == held, (product.sku, product.stock_reserved, held)
            assert 0 <= product.stock_reserved <= product.stock_on_hand, product.sku
            assert stock_ledger_totals(product_id=product.pk) == (
                product.stock_on_hand,
                product.stock_reserved,
            ), product.sku
            assert not StockMovement.objects.filter(product=product, quantity=0).exists()


@pytest.mark.django_db
def test_stock_stays_consistent_under_any_sequence_of_operations():
    run_state_machine_as_test(
        StockMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
