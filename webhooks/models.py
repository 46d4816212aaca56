"""Webhook subscriptions and the log of what was sent to them (SPEC §9)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.models import Event

ALL_EVENTS = "*"


class Subscription(models.Model):
    """An integration's endpoint and the event types it wants (or "*")."""

    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list, help_text='Event types, or ["*"] for all of them.')
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    # Standard Webhooks secrets ("whsec_" + base64 of 24 random bytes). The key
    # is needed to sign, so it is kept, as Saleor and Svix keep theirs.
    secret = models.CharField(max_length=100, editable=False)
    # After a rotation the old secret signs too, until it expires.
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Since when every attempt has failed (None: the last one succeeded).
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)

    def __str__(self):
        return self.url

    def wants(self, event: Event) -> bool:
        """Whether this subscription gets `event`. A ping goes only to the
        subscription it was sent for."""
        if event.type == Event.Type.WEBHOOK_PING:
            return event.aggregate == "webhook" and event.aggregate_id == self.pk
        return self.is_active and (ALL_EVENTS in self.events or event.type in self.events)

    def signing_secrets(self, now=None) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the
        previous one while it is still valid after a rotation."""
        now = now or timezone.now()
        secrets = [self.secret]
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires and expires > now:
            secrets.append(self.previous_secret)
        return secrets


class Delivery(models.Model):
    """One event for one subscription: sent until a 2xx, on the retry
    schedule, then failed. A redelivery is a new row for the same event (the
    same `webhook-id`), so the log keeps both."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    redelivery_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The event's aggregate, copied: one subscription receives one order's
    # events in the order they happened, a later one waiting for an earlier.
    aggregate = models.CharField(max_length=20)
    aggregate_id = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker sending the delivery holds it until then; a killed worker's
    # lease runs out and another sends it.
    leased_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "deliveries"
        constraints = [
            # The fan-out makes one delivery per (subscription, event), even twice.
            models.UniqueConstraint(
                fields=["subscription", "event"],
                condition=models.Q(redelivery_of__isnull=True),
                name="delivery_once_per_event",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="delivery_due_idx",
            ),
            models.Index(
                fields=["subscription", "aggregate", "aggregate_id", "event"],
                condition=models.Q(status="pending"),
                name="delivery_pending_order_idx",
            ),
            models.Index(fields=["subscription", "-created_at", "-id"], name="delivery_log_idx"),
            # The failed ones, counted at each scrape of /metrics (kept until retention).
            models.Index(
                fields=["id"], condition=models.Q(status="failed"), name="delivery_failed_idx"
            ),
        ]

    def __str__(self):
        return f"{self.event.type} to {self.subscription_id} ({self.status})"


class Attempt(models.Model):
    """One try of a delivery: what the receiver answered, and how fast."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="tries")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    # The start of the response body, for the log.
    response_body = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("started_at", "id")

    def __str__(self):
        return f"{self.status_code or self.error} in {self.duration_ms} ms"
