"""A product as staff see it in the API (GET /api/v1/products/{id}/ with
`inventory.view_product`), built by hand: the payload of product events.
A test holds it equal to `StaffProductSerializer`."""

from decimal import Decimal

from django.conf import settings
from rest_framework import serializers

timestamp = serializers.DateTimeField().to_representation


def product_data(product) -> dict:
    return {
        "id": product.pk,
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price": str(Decimal(product.price).quantize(Decimal("0.01"))),
        "currency": settings.CURRENCY,
        "is_active": product.is_active,
        "stock_available": product.stock_available,
        "stock_on_hand": product.stock_on_hand,
        "stock_reserved": product.stock_reserved,
        "low_stock_threshold": product.low_stock_threshold,
        "created_at": timestamp(product.created_at),
        "updated_at": timestamp(product.updated_at),
    }
