"""An order as a backup holds it: the staff representation (what
GET /api/v1/orders/{id}/ shows), its history, and — in a full export — what
a restore needs besides: the customer and the products of its lines."""

from django.db.models import Prefetch, QuerySet

from core.actors import actor_label
from inventory.models import Product
from inventory.representation import product_data
from orders.models import Order, OrderEvent, OrderLine
from orders.representation import order_data, timestamp

FORMAT = 1  # bumped if a document's shape changes


def backup_queryset(orders: QuerySet[Order] | None = None) -> QuerySet[Order]:
    """Orders with what their documents show, in a fixed number of queries."""
    orders = Order.objects.all() if orders is None else orders
    return orders.select_related("customer").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("id")),
        Prefetch("events", queryset=OrderEvent.objects.select_related("actor").order_by("id")),
    )


def history(order: Order) -> list[dict]:
    """The order's events as GET /api/v1/orders/{id}/events/ shows them."""
    return [
        {
            "id": event.pk,
            "type": event.type,
            "from_status": event.from_status or None,
            "to_status": event.to_status or None,
            "actor": actor_label(event),
            "note": event.note,
            "data": event.data,
            "created_at": timestamp(event.created_at),
        }
        for event in order.events.all()
    ]


def order_document(order: Order) -> dict:
    """`orders/{id}.json`: the order, its history, and the number of its
    latest event (the copy holds the state after it)."""
    return {
        "format": FORMAT,
        "sequence": order.event_sequence,
        "order": order_data(order),
        "events": history(order),
    }


def export_document(order: Order, products: dict[int, Product]) -> dict:
    """One line of a full export: the order document, with the customer and
    the products of its lines as they are now (a restore makes them)."""
    customer = order.customer
    return {
        **order_document(order),
        "customer": {
            "id": customer.pk,
            "email": customer.email,
            "phone": str(customer.phone) if customer.phone else None,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "date_joined": timestamp(customer.date_joined),
        },
        "products": [
            product_data(products[line.product_id])
            for line in order.lines.all()
            if line.product_id in products
        ],
    }
