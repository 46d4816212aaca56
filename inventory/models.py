from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

# PositiveIntegerField's ceiling on every database Django supports.
MAX_STOCK = 2_147_483_647


# Available stock, the one definition: what is on hand and not reserved for an
# order. Every filter, ordering and annotation of it (the API's `in_stock`, the
# admin's column and low-stock filter, the dashboard, the daily report) uses
# this expression; `Product.stock_available` is the same for one row in Python.
AVAILABLE = F("stock_on_hand") - F("stock_reserved")


class ProductQuerySet(models.QuerySet):
    def with_available(self):
        """Each product with `available` (on hand - reserved) annotated."""
        return self.alias(available=AVAILABLE)

    def in_stock(self):
        """Something is available."""
        return self.with_available().filter(available__gt=0)

    def out_of_stock(self):
        return self.with_available().filter(available__lte=0)

    def low_stock(self):
        """Available stock at or under the product's threshold."""
        return self.with_available().filter(available__lte=F("low_stock_threshold"))

    def by_available(self):
        """Lowest available stock first (then by SKU)."""
        return self.annotate(available=AVAILABLE).order_by("available", "sku")


class Product(models.Model):
    """A catalogue entry and its stock.

    `stock_on_hand` is what is in the warehouse, `stock_reserved` what pending
    and processing orders hold of it; both change only through
    `inventory.services`, which writes a `StockMovement` for every change.
    """

    sku = models.CharField("SKU", max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    is_active = models.BooleanField(default=True)
    stock_on_hand = models.PositiveIntegerField(default=0, editable=False)
    stock_reserved = models.PositiveIntegerField(default=0, editable=False)
    low_stock_threshold = models.PositiveIntegerField(default=5)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ("name", "id")
        # Stock changes through adjustments only, a permission of its own:
        # changing a product's catalogue fields does not include it.
        permissions = [("adjust_stock", "Can adjust stock (writes the ledger)")]
        constraints = [
            models.CheckConstraint(
                condition=Q(stock_reserved__gte=0) & Q(stock_reserved__lte=F("stock_on_hand")),
                name="product_reserved_within_on_hand",
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_gte_0"),
        ]
        # The list shows active products to customers, ordered by one of these.
        indexes = [
            models.Index(fields=["is_active", "name", "id"], name="product_active_name_idx"),
            models.Index(fields=["is_active", "price", "id"], name="product_active_price_idx"),
            models.Index(
                fields=["is_active", "created_at", "id"], name="product_active_created_idx"
            ),
        ]

    def __str__(self):
        return f"{self.sku} · {self.name}"

    @property
    def stock_available(self) -> int:
        return self.stock_on_hand - self.stock_reserved

    @property
    def is_low_on_stock(self) -> bool:
        return self.stock_available <= self.low_stock_threshold


class StockMovement(models.Model):
    """One line of the append-only stock ledger.

    `quantity` is signed. Which figure a movement changes follows from its kind:
    adjustments change on-hand stock, reserve and release change reserved stock,
    and shipping consumes a reservation, so it lowers both. Summed per product,
    the ledger gives the product's current on-hand and reserved figures.
    """

    class Kind(models.TextChoices):
        RESTOCK = "restock", "Restock"
        CORRECTION = "correction", "Correction"
        DAMAGE = "damage", "Damage"
        RETURN = "return", "Return"
        RESERVE = "reserve", "Reserve"
        RELEASE = "release", "Release"
        SHIP = "ship", "Ship"

    ADJUSTMENT_KINDS = (Kind.RESTOCK, Kind.CORRECTION, Kind.DAMAGE, Kind.RETURN)
    ON_HAND_KINDS = (*ADJUSTMENT_KINDS, Kind.SHIP)
    RESERVED_KINDS = (Kind.RESERVE, Kind.RELEASE, Kind.SHIP)

    # The ledger is append-only: a product with any movement cannot be
    # deleted (only deactivated), so its movements are never lost with it.
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="movements")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    quantity = models.IntegerField()
    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="stock_movements",
    )
    # Null when the system made the change (the background worker).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.CheckConstraint(
                condition=~Q(quantity=0), name="stock_movement_quantity_not_zero"
            ),
        ]
        indexes = [
            models.Index(fields=["product", "created_at", "id"], name="movement_product_idx"),
            # The admin's ledger, newest first.
            models.Index(fields=["created_at", "id"], name="movement_created_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.quantity:+d} of {self.product_id}"
