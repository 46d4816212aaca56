from django.db.models import Prefetch, QuerySet

from .models import Order, OrderEvent, OrderLine


def order_list(*, user) -> QuerySet[Order]:
    """The orders `user` may see, ready to serialize with a fixed number of
    queries: staff see every order, a customer their own."""
    orders = Order.objects.select_related("customer").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("id"))
    )
    if not user.is_staff:
        orders = orders.filter(customer=user)
    return orders


def order_event_list(*, order: Order) -> QuerySet[OrderEvent]:
    """An order's history, oldest first."""
    return (
        OrderEvent.objects.filter(order=order).select_related("actor").order_by("created_at", "id")
    )
