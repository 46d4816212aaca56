"""Background processing of pending orders (SPEC §7): the service that the
periodic task `orders.tasks.process_pending_orders` calls.

Each batch is one transaction: it locks up to `batch_size` pending orders with
`SELECT ... FOR UPDATE SKIP LOCKED`, checks each, moves the good ones to
`processing` in bulk through `orders.services` (actor: the system), moves the
ones that cannot be processed to `failed` (releasing their stock) and queues
the customers' confirmation e-mails, which are sent after commit.

Because the rows are locked and the status is re-checked under the lock, any
number of workers and beats can run this at once: each order is moved by
exactly one of them, once. A worker that dies mid-batch rolls the whole batch
back, so no order is ever half-moved, and the next run picks it up again.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import prefetch_related_objects

from inventory.selectors import stock_held_by_orders

from . import services
from .emails import order_emails_queue
from .exceptions import ProcessingRefused
from .models import Order, OrderEmail
from .statuses import OrderStatus

logger = logging.getLogger(__name__)


# What an order's event says when processing raised something unexpected: the
# details go to the log, not to the customer.
UNEXPECTED = ("Processing failed because of an internal error.", "internal_error")


def order_check_processable(order: Order, lines: dict[int, int], held: dict[int, int]) -> None:
    """Raise `ProcessingRefused` unless `order` can go to processing: its
    customer's account is active and the stock reserved for it, as the ledger
    says, is exactly what its lines ask for (`{product_id: quantity}` each)."""
    if not order.customer.is_active:
        raise ProcessingRefused("The customer's account is deactivated.", "customer_inactive")
    if not lines:
        raise ProcessingRefused("The order has no items.", "no_items")
    if lines != held:
        raise ProcessingRefused(
            "The stock reserved for the order does not match its items.", "reservation_mismatch"
        )


@dataclass
class BatchResult:
    locked: int = 0
    processed: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # order id: reason code
    # The confirmation e-mails the batch owes (`OrderEmail` ids), to send once it committed.
    emails: list[int] = field(default_factory=list)


@dataclass
class RunResult:
    batches: int = 0
    processed: int = 0
    failed: int = 0
    # True when the run stopped at its time budget with pending orders left.
    more: bool = False


def _fail(order: Order, reason: str, code: str) -> bool:
    """Move `order` to failed (its stock is released) in a savepoint; False if
    even that raised, in which case it stays pending for the next run."""
    try:
        with transaction.atomic():
            services.order_transition(
                order=order,
                to_status=OrderStatus.FAILED,
                actor=None,
                note=reason,
                data={"reason": code},
            )
    except Exception:
        logger.exception("Order %s could not be marked failed; it stays pending", order.pk)
        return False
    return True


def _start_processing(orders: list[Order], result: BatchResult) -> list[Order]:
    """Move `orders` to processing in one go; if the bulk move raises, move them
    one at a time so that only the order at fault fails."""
    if not orders:
        return []
    try:
        with transaction.atomic():
            services.order_transition_locked_many(
                orders=orders, to_status=OrderStatus.PROCESSING, actor=None
            )
        return orders
    except Exception:
        logger.exception("Moving %d orders at once failed; moving them one by one", len(orders))
    moved = []
    for order in orders:
        try:
            with transaction.atomic():
                moved.append(
                    services.order_transition(
                        order=order, to_status=OrderStatus.PROCESSING, actor=None
                    )
                )
        except Exception:
            logger.exception("Processing order %s failed", order.pk)
            if _fail(order, *UNEXPECTED):
                result.failed[order.pk] = UNEXPECTED[1]
    return moved


@transaction.atomic
def process_pending_batch(*, batch_size: int) -> BatchResult:
    """Process up to `batch_size` pending orders, oldest first, in one transaction."""
    result = BatchResult()
    orders = list(
        Order.objects.filter(status=OrderStatus.PENDING)
        .select_related("customer")
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("created_at", "id")[:batch_size]
    )
    result.locked = len(orders)
    if not orders:
        return result
    ids = [order.pk for order in orders]
    # The lines, read once: to check each order, and to show it in its event.
    prefetch_related_objects(orders, "lines")
    lines = {
        order.pk: {line.product_id: line.quantity for line in order.lines.all()} for order in orders
    }
    held = stock_held_by_orders(ids)

    ready = []
    for order in orders:
        try:
            order_check_processable(order, lines.get(order.pk, {}), held.get(order.pk, {}))
        except ProcessingRefused as refusal:
            refused = (refusal.reason, refusal.code)
        except Exception:
            logger.exception("Checking order %s raised", order.pk)
            refused = UNEXPECTED
        else:
            ready.append(order)
            continue
        if _fail(order, *refused):
            result.failed[order.pk] = refused[1]

    moved = _start_processing(ready, result)
    result.processed = [order.pk for order in moved]
    result.emails = order_emails_queue(orders=moved, kind=OrderEmail.Kind.CONFIRMATION)
    return result


def process_pending_orders(
    *,
    batch_size: int | None = None,
    time_budget: float | None = None,
    after_batch: Callable[[BatchResult], object] | None = None,
) -> RunResult:
    """Process pending orders batch after batch until none is left, or until
    `time_budget` seconds have gone (the next run goes on from there).
    `after_batch(batch)` is called once each batch has committed (the task
    hands the batch's e-mails to a worker there)."""
    batch_size = batch_size or settings.ORDER_PROCESSING_BATCH_SIZE
    budget = settings.ORDER_PROCESSING_TIME_BUDGET if time_budget is None else time_budget
    deadline = time.monotonic() + budget
    run = RunResult()
    while True:
        batch = process_pending_batch(batch_size=batch_size)
        if after_batch is not None:
            after_batch(batch)
        run.batches += 1
        run.processed += len(batch.processed)
        run.failed += len(batch.failed)
        if batch.locked < batch_size:
            return run  # that was the last of them (or the rest are locked by another run)
        if not batch.processed and not batch.failed:
            return run  # nothing could move: do not spin on the same orders
        if time.monotonic() >= deadline:
            run.more = True
            return run
