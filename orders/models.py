from decimal import Decimal

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from core.fields import StampField

from .statuses import OrderStatus

MAX_LINES = 100
MAX_QUANTITY = 10_000
# Room for the dearest order the limits allow: 100 lines of 10,000 units at
# the highest price a product may have (12 digits, 2 of them decimals).
MONEY_TOTAL_DIGITS = 20


class Order(models.Model):
    """An order placed by a customer. Its status only changes through
    `orders.services`; the stock it holds is recorded in the inventory ledger."""

    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    total = models.DecimalField(
        max_digits=MONEY_TOTAL_DIGITS, decimal_places=2, default=Decimal("0.00")
    )
    currency = models.CharField(max_length=3)
    shipping_address = models.CharField(max_length=500, blank=True)
    notes = models.CharField(max_length=1000, blank=True)
    # The number of the order's last outbox event (core.models.Event.sequence):
    # read with the order's row lock, so events of one order are numbered 1, 2, 3.
    event_sequence = models.PositiveIntegerField(default=0, editable=False)
    # A restore inserts the exported times (core.fields.StampField).
    created_at = StampField(auto_now_add=True)
    updated_at = StampField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        permissions = [
            ("export_order", "Can export orders as CSV"),
            # Every status move staff make (processing, shipped, delivered,
            # cancelled) goes by the status table and needs this; editing the
            # delivery details is change_order.
            ("move_order", "Can move orders along the status table"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(total__gte=0), name="order_total_gte_0"),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="order_created_idx"),
            models.Index(
                fields=["customer", "-created_at", "-id"], name="order_customer_created_idx"
            ),
            models.Index(fields=["status", "-created_at", "-id"], name="order_status_created_idx"),
            # `?ordering=total` / `-total` on the list (read forwards or backwards).
            models.Index(fields=["total", "id"], name="order_total_idx"),
        ]

    def __str__(self):
        return f"Order #{self.pk}"


class OrderLine(models.Model):
    """One product of an order, with its SKU, name and price as they were when
    the order was placed."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    # Ordered products cannot be deleted, only deactivated.
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    sku = models.CharField("SKU", max_length=64)
    name = models.CharField(max_length=200)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(max_digits=MONEY_TOTAL_DIGITS, decimal_places=2)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="order_line_product_once"),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1, quantity__lte=MAX_QUANTITY),
                name="order_line_quantity_range",
            ),
            models.CheckConstraint(
                condition=models.Q(unit_price__gte=0), name="order_line_unit_price_gte_0"
            ),
        ]
        indexes = [models.Index(fields=["sku"], name="order_line_sku_idx")]

    def __str__(self):
        return f"{self.quantity} x {self.sku}"


class OrderEvent(models.Model):
    """One entry of an order's history: placed, moved, or edited."""

    class Type(models.TextChoices):
        CREATED = "created", "Created"
        STATUS_CHANGED = "status_changed", "Status changed"
        UPDATED = "updated", "Details updated"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=20, choices=Type.choices)
    from_status = models.CharField(max_length=16, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=OrderStatus.choices, blank=True)
    # Null when the system acted (the background worker).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    note = models.CharField(max_length=1000, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = StampField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")
        indexes = [models.Index(fields=["order", "created_at", "id"], name="order_event_order_idx")]

    def __str__(self):
        return f"{self.get_type_display()} ({self.from_status or '—'} → {self.to_status or '—'})"


class IdempotencyRecord(models.Model):
    """The first response to a create request made with an `Idempotency-Key`,
    kept so a retry of the same request gets it again instead of a second order."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique"),
        ]

    def __str__(self):
        return f"{self.key} ({self.user_id})"


class OrderEmail(models.Model):
    """An e-mail about an order, written in the same transaction as the change
    it reports and sent after commit (a transactional outbox).

    The row, not a broker message, is the record that the e-mail is owed: a
    lost task or a broker that was down only delays it, and `sent_at` makes a
    second send of the same row a no-op."""

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", "Order confirmation"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When a failed send is tried again (backoff grows with each attempt).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=["order", "kind"], name="order_email_once_per_kind"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(sent_at__isnull=True),
                name="order_email_unsent_idx",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} for order #{self.order_id}"
