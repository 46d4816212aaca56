from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from core.serializers import ActorField

from ..models import MAX_STOCK, Product, StockMovement
from ..services import CATALOGUE_FIELDS


class ProductSerializer(serializers.ModelSerializer):
    """A product as anyone may see it: no stock internals, only what is available."""

    currency = serializers.SerializerMethodField()
    stock_available = serializers.IntegerField(read_only=True)

    class Meta:
        model = Product
        fields = (
            "id",
            "sku",
            "name",
            "description",
            "price",
            "currency",
            "is_active",
            "stock_available",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_currency(self, product) -> str:
        return settings.CURRENCY


class StaffProductSerializer(ProductSerializer):
    """A product as staff see it, with the stock figures behind `stock_available`."""

    class Meta(ProductSerializer.Meta):
        fields = (
            *ProductSerializer.Meta.fields[:8],
            "stock_on_hand",
            "stock_reserved",
            "low_stock_threshold",
            *ProductSerializer.Meta.fields[8:],
        )
        read_only_fields = fields


class ProductWriteSerializer(serializers.ModelSerializer):
    """What staff may set on a product. Stock is not here: it changes through
    stock adjustments and orders only, and is ignored if sent."""

    sku = serializers.CharField(
        max_length=64,
        validators=[
            RegexValidator(r"^\S+$", "A SKU may not contain spaces."),
            UniqueValidator(
                Product.objects.all(), message="A product with this SKU already exists."
            ),
        ],
    )
    low_stock_threshold = serializers.IntegerField(min_value=0, max_value=MAX_STOCK, default=5)

    class Meta:
        model = Product
        fields = CATALOGUE_FIELDS


class StockMovementSerializer(serializers.ModelSerializer):
    order = serializers.PrimaryKeyRelatedField(source="order_id", read_only=True)
    actor = ActorField()

    class Meta:
        model = StockMovement
        fields = ("id", "kind", "quantity", "order", "actor", "note", "created_at")
        read_only_fields = fields


class StockAdjustmentSerializer(serializers.Serializer):
    delta = serializers.IntegerField(
        min_value=-MAX_STOCK,
        max_value=MAX_STOCK,
        help_text="Signed change of on-hand stock; not zero. Positive for restock and "
        "return, negative for damage, either for a correction.",
    )
    reason = serializers.ChoiceField(
        choices=[kind.value for kind in StockMovement.ADJUSTMENT_KINDS]
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class StockAdjustmentResultSerializer(StaffProductSerializer):
    """The product with its new stock figures, and the movement just written."""

    movement = StockMovementSerializer(read_only=True)

    class Meta(StaffProductSerializer.Meta):
        fields = (*StaffProductSerializer.Meta.fields, "movement")
        read_only_fields = fields
