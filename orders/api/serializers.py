from rest_framework import serializers

from core.filters import MAX_ID
from core.serializers import ActorField

from ..models import MAX_LINES, MAX_QUANTITY, Order, OrderEvent, OrderLine
from ..representation import order_data
from ..statuses import OrderStatus


class CustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(
        read_only=True,
        allow_null=True,
        help_text="Null for a customer who signed in by SMS and has no e-mail yet.",
    )


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ("product_id", "sku", "name", "quantity", "unit_price", "line_total")
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    """An order with its items. Everything here is owned by the server except
    `shipping_address` and `notes`.

    The declared fields are the contract (and the OpenAPI schema); the output
    is `orders.representation.order_data`, built by hand (the hottest read of
    the API, and the payload of order events). A test holds the two equal."""

    customer = CustomerSerializer(read_only=True)
    items = OrderLineSerializer(source="lines", many=True, read_only=True)

    class Meta:
        model = Order
        fields = (
            "id",
            "customer",
            "status",
            "items",
            "total",
            "currency",
            "shipping_address",
            "notes",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def to_representation(self, order):
        return order_data(order)


class OrderItemInputSerializer(serializers.Serializer):
    product_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class OrderCreateSerializer(serializers.Serializer):
    """What a client sends to place an order. Prices, totals, status and the
    customer are the server's: they are ignored if sent."""

    items = serializers.ListField(
        child=OrderItemInputSerializer(), allow_empty=False, max_length=MAX_LINES
    )
    shipping_address = serializers.CharField(
        max_length=500, allow_blank=True, required=False, default=""
    )
    notes = serializers.CharField(max_length=1000, allow_blank=True, required=False, default="")
    customer_id = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        help_text="Staff only: place the order for this customer (ignored for customers).",
    )


class OrderUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=OrderStatus.choices, required=False, help_text="Staff only."
    )
    shipping_address = serializers.CharField(max_length=500, allow_blank=True, required=False)
    notes = serializers.CharField(max_length=1000, allow_blank=True, required=False)


class OrderCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, allow_blank=True, required=False, default="")


class StatusOrNullField(serializers.ChoiceField):
    """A status, or null where the event has none (an order's first event has
    no `from_status`)."""

    def __init__(self, **kwargs):
        super().__init__(choices=OrderStatus.choices, allow_null=True, read_only=True, **kwargs)

    def to_representation(self, value):
        return value or None


class OrderEventSerializer(serializers.ModelSerializer):
    from_status = StatusOrNullField()
    to_status = StatusOrNullField()
    actor = ActorField()

    class Meta:
        model = OrderEvent
        fields = ("id", "type", "from_status", "to_status", "actor", "note", "data", "created_at")
        read_only_fields = fields
