"""Background processing of pending orders (SPEC §7), through the service and
the Celery task run inline. The races between runs are in test_processing_race."""

import logging
from decimal import Decimal

import pytest
from django.core import mail

from accounts.tests.factories import StaffFactory, UserFactory
from inventory.tests.factories import ProductFactory
from inventory.tests.helpers import assert_ledger_explains
from orders import processing, services, tasks
from orders.models import Order, OrderEmail, OrderEvent, OrderLine
from orders.statuses import OrderStatus
from orders.tests.factories import OrderFactory, place_order

pytestmark = pytest.mark.django_db

S = OrderStatus


def moves(order) -> list[tuple[str, str, int | None, str]]:
    return list(
        OrderEvent.objects.filter(order=order, type=OrderEvent.Type.STATUS_CHANGED)
        .order_by("id")
        .values_list("from_status", "to_status", "actor_id", "note")
    )


@pytest.fixture
def run(celery_eager, django_capture_on_commit_callbacks):
    """Run the periodic task as beat would, with what it sends after commit."""

    def run_task(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return tasks.process_pending_orders.apply(kwargs=kwargs).get()

    return run_task


def test_pending_orders_move_to_processing_once_with_a_system_event_and_an_email(run):
    product = ProductFactory(stock=10, price=Decimal("4.50"))
    customers = [UserFactory(first_name=f"C{i}") for i in range(3)]
    orders = [place_order(customer, (product, 2)) for customer in customers]

    assert run() == {"processed": 3, "failed": 0, "more": False}

    for order in orders:
        order.refresh_from_db()
        assert order.status == S.PROCESSING
        assert moves(order) == [(S.PENDING, S.PROCESSING, None, "")]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(c.email for c in customers)
    first = next(m for m in mail.outbox if m.to == [customers[0].email])
    assert first.subject == f"Your order #{orders[0].pk} is being processed"
    assert "2 x" in first.body and "Total: 9.00 USD" in first.body
    assert OrderEmail.objects.filter(sent_at__isnull=False, attempts=1).count() == 3
    # Processing holds the stock: still reserved, not consumed.
    product.refresh_from_db()
    assert (product.stock_on_hand, product.stock_reserved) == (10, 6)
    assert_ledger_explains(product)


def test_a_second_run_moves_nothing_and_mails_nobody_again(run):
    product = ProductFactory(stock=10)
    order = place_order(UserFactory(), (product, 1))
    run()
    assert run() == {"processed": 0, "failed": 0, "more": False}
    assert len(moves(order)) == 1
    assert len(mail.outbox) == 1
    assert OrderEmail.objects.filter(order=order).count() == 1


def test_only_pending_orders_are_touched(run):
    product = ProductFactory(stock=10)
    staff = StaffFactory()
    cancelled = place_order(UserFactory(), (product, 1))
    services.order_cancel(order=cancelled, actor=staff)
    shipped = place_order(UserFactory(), (product, 1))
    services.order_transition(order=shipped, to_status=S.PROCESSING, actor=staff)
    services.order_transition(order=shipped, to_status=S.SHIPPED, actor=staff)
    pending = place_order(UserFactory(), (product, 1))

    assert run()["processed"] == 1
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses == {
        cancelled.pk: S.CANCELLED,
        shipped.pk: S.SHIPPED,
        pending.pk: S.PROCESSING,
    }
    assert len(mail.outbox) == 1


def test_a_backlog_is_drained_in_bounded_batches_oldest_first(django_assert_max_num_queries):
    product = ProductFactory(stock=100)
    orders = [place_order(UserFactory(), (product, 1)) for _ in range(7)]

    batch = processing.process_pending_batch(batch_size=3)
    assert batch.processed == [order.pk for order in orders[:3]]
    run = processing.process_pending_orders(batch_size=3)
    assert (run.batches, run.processed, run.failed, run.more) == (2, 4, 0, False)
    assert set(Order.objects.values_list("status", flat=True)) == {S.PROCESSING}


def test_a_batch_costs_the_same_queries_for_three_orders_as_for_fifty(
    django_assert_max_num_queries,
):
    product = ProductFactory(stock=1000)
    for size in (3, 50):
        for _ in range(size):
            place_order(UserFactory(), (product, 1))
        # The batch and its lines, what the ledger holds, the move, its history,
        # its outbox events, the e-mail rows (and the savepoints around them).
        with django_assert_max_num_queries(11):
            assert len(processing.process_pending_batch(batch_size=100).processed) == size


def test_the_time_budget_leaves_the_rest_for_the_next_run():
    product = ProductFactory(stock=10)
    for _ in range(3):
        place_order(UserFactory(), (product, 1))
    run = processing.process_pending_orders(batch_size=1, time_budget=0)
    assert (run.processed, run.more) == (1, True)
    assert Order.objects.filter(status=S.PENDING).count() == 2


def test_an_order_of_a_deactivated_customer_fails_and_gives_its_stock_back(run):
    product = ProductFactory(stock=10)
    gone = UserFactory()
    failing = place_order(gone, (product, 4))
    fine = [place_order(UserFactory(), (product, 1)) for _ in range(2)]
    gone.is_active = False
    gone.save()

    assert run() == {"processed": 2, "failed": 1, "more": False}

    failing.refresh_from_db()
    assert failing.status == S.FAILED
    assert moves(failing) == [(S.PENDING, S.FAILED, None, "The customer's account is deactivated.")]
    event = OrderEvent.objects.get(order=failing, to_status=S.FAILED)
    assert event.data == {"reason": "customer_inactive"}
    assert [o.status for o in Order.objects.filter(pk__in=[o.pk for o in fine])] == [
        S.PROCESSING
    ] * 2
    product.refresh_from_db()
    assert product.stock_reserved == 2  # the failed order's 4 are released
    assert_ledger_explains(product)
    assert [m.to for m in mail.outbox] == [[o.customer.email] for o in fine]


def test_an_order_whose_reservation_does_not_match_its_lines_fails(run):
    reserved, unreserved = ProductFactory(stock=10), ProductFactory(stock=10)
    order = place_order(UserFactory(), (reserved, 3))
    # A line that no reservation covers (only a bug or a hand edit could do this).
    OrderLine.objects.create(
        order=order,
        product=unreserved,
        sku=unreserved.sku,
        name=unreserved.name,
        unit_price=unreserved.price,
        quantity=1,
        line_total=unreserved.price,
    )
    assert run()["failed"] == 1
    order.refresh_from_db()
    assert order.status == S.FAILED
    assert OrderEvent.objects.get(order=order, to_status=S.FAILED).data == {
        "reason": "reservation_mismatch"
    }
    for product in (reserved, unreserved):
        product.refresh_from_db()
        assert product.stock_reserved == 0
        assert_ledger_explains(product)


def test_an_order_without_lines_fails():
    order = OrderFactory()
    assert processing.process_pending_batch(batch_size=10).failed == {order.pk: "no_items"}


def test_an_unexpected_error_fails_only_that_order_and_keeps_the_details_in_the_log(
    monkeypatch, caplog
):
    product = ProductFactory(stock=10)
    orders = [place_order(UserFactory(), (product, 2)) for _ in range(3)]
    check = processing.order_check_processable

    def breaks_on_the_second(order, lines, held):
        if order.pk == orders[1].pk:
            raise KeyError("internal detail the customer must not see")
        check(order, lines, held)

    monkeypatch.setattr(processing, "order_check_processable", breaks_on_the_second)
    with caplog.at_level(logging.ERROR, logger="orders.processing"):
        batch = processing.process_pending_batch(batch_size=10)

    assert batch.processed == [orders[0].pk, orders[2].pk]
    assert batch.failed == {orders[1].pk: "internal_error"}
    event = OrderEvent.objects.get(order=orders[1], to_status=S.FAILED)
    assert "internal detail" not in event.note
    assert event.note == "Processing failed because of an internal error."
    assert "internal detail the customer must not see" in caplog.text
    product.refresh_from_db()
    assert product.stock_reserved == 4
    assert_ledger_explains(product)


def test_when_the_bulk_move_raises_the_orders_move_one_by_one(monkeypatch):
    product = ProductFactory(stock=10)
    orders = [place_order(UserFactory(), (product, 1)) for _ in range(3)]

    def broken(**kwargs):
        raise RuntimeError("bulk path broken")

    monkeypatch.setattr(services, "order_transition_locked_many", broken)
    batch = processing.process_pending_batch(batch_size=10)
    assert batch.processed == [order.pk for order in orders]
    for order in orders:
        assert moves(order) == [(S.PENDING, S.PROCESSING, None, "")]


def test_one_order_that_breaks_the_single_move_too_fails_alone(monkeypatch):
    product = ProductFactory(stock=10)
    orders = [place_order(UserFactory(), (product, 1)) for _ in range(3)]
    transition = services.order_transition

    def bulk_broken(**kwargs):
        raise RuntimeError("bulk path broken")

    def single(*, order, to_status, **kwargs):
        if order.pk == orders[0].pk and to_status == S.PROCESSING:
            raise RuntimeError("this order breaks")
        return transition(order=order, to_status=to_status, **kwargs)

    monkeypatch.setattr(services, "order_transition_locked_many", bulk_broken)
    monkeypatch.setattr(services, "order_transition", single)
    batch = processing.process_pending_batch(batch_size=10)
    assert batch.processed == [orders[1].pk, orders[2].pk]
    assert batch.failed == {orders[0].pk: "internal_error"}
    product.refresh_from_db()
    assert product.stock_reserved == 2
    assert_ledger_explains(product)


def test_an_order_that_cannot_even_be_failed_stays_pending_and_the_run_ends(monkeypatch):
    product = ProductFactory(stock=10)
    stuck = place_order(UserFactory(), (product, 1))
    stuck.customer.is_active = False
    stuck.customer.save()

    def refuse(**kwargs):
        raise RuntimeError("cannot move at all")

    monkeypatch.setattr(services, "order_transition", refuse)
    run = processing.process_pending_orders(batch_size=1, time_budget=60)
    assert (run.batches, run.processed, run.failed) == (1, 0, 0)
    stuck.refresh_from_db()
    assert stuck.status == S.PENDING
    assert moves(stuck) == []
