"""An order as the API shows it (GET /api/v1/orders/{id}/), built by hand.

The hottest read of the API and the payload of every order event: a page of
20 orders with their items goes through about 250 DRF field objects
otherwise, several times the cost of its SQL. `OrderSerializer` declares the
fields (the contract, and the OpenAPI schema) and calls this; a test holds
the two equal."""

from decimal import Decimal

from rest_framework import serializers

CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    """As DRF's DecimalField shows a two-place amount: "19.99"."""
    return str(value.quantize(CENT))


timestamp = serializers.DateTimeField().to_representation


def order_data(order) -> dict:
    """`order` with its customer and lines loaded (select_related,
    prefetch_related or attached) as the API shows it."""
    return {
        "id": order.pk,
        "customer": {"id": order.customer_id, "email": order.customer.email},
        "status": order.status,
        "items": [
            {
                "product_id": line.product_id,
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price": money(line.unit_price),
                "line_total": money(line.line_total),
            }
            for line in order.lines.all()
        ],
        "total": money(order.total),
        "currency": order.currency,
        "shipping_address": order.shipping_address,
        "notes": order.notes,
        "created_at": timestamp(order.created_at),
        "updated_at": timestamp(order.updated_at),
    }
