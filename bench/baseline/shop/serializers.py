from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework import serializers

from .models import Order, OrderLine, Product


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ("id", "email")


class OrderLineSerializer(serializers.ModelSerializer):
    product_id = serializers.IntegerField()
    sku = serializers.CharField(source="product.sku", read_only=True)
    name = serializers.CharField(source="product.name", read_only=True)
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)

    class Meta:
        model = OrderLine
        fields = ("product_id", "sku", "name", "quantity", "unit_price", "line_total")
        read_only_fields = ("unit_price",)
        extra_kwargs = {"quantity": {"min_value": 1}}


class OrderSerializer(serializers.ModelSerializer):
    customer = CustomerSerializer(read_only=True)
    items = OrderLineSerializer(many=True)

    class Meta:
        model = Order
        fields = ("id", "customer", "status", "items", "total", "notes", "created_at", "updated_at")
        read_only_fields = ("status", "total")

    def validate_items(self, items):
        if not items:
            raise serializers.ValidationError("An order needs at least one item.")
        return items

    def create(self, validated_data):
        items = validated_data.pop("items")
        with transaction.atomic():
            order = Order.objects.create(**validated_data)
            total = 0
            # Lock the products in id order so that two orders for the same
            # products cannot deadlock.
            for item in sorted(items, key=lambda i: i["product_id"]):
                try:
                    product = Product.objects.select_for_update().get(pk=item["product_id"])
                except Product.DoesNotExist:
                    raise serializers.ValidationError(
                        {"items": f"Product {item['product_id']} does not exist."}
                    ) from None
                if product.stock < item["quantity"]:
                    raise serializers.ValidationError(
                        {"items": f"Not enough stock for {product.sku}."}
                    )
                product.stock -= item["quantity"]
                product.save(update_fields=["stock"])
                OrderLine.objects.create(
                    order=order,
                    product=product,
                    quantity=item["quantity"],
                    unit_price=product.price,
                )
                total += product.price * item["quantity"]
            order.total = total
            order.save(update_fields=["total", "updated_at"])
        return order
