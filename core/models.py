"""The outbox of domain events (SPEC §9): one table every app writes to, in
the transaction of the change it reports."""

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class Event(models.Model):
    """Something that happened to an order or a product, as the outside
    world is told it: written with the change, read after commit by the
    consumers of the outbox (webhooks; see `core.events`)."""

    class Type(models.TextChoices):
        ORDER_CREATED = "order.created", "order.created"
        ORDER_UPDATED = "order.updated", "order.updated"
        ORDER_STATUS_CHANGED = "order.status_changed", "order.status_changed"
        PRODUCT_LOW_STOCK = "product.low_stock", "product.low_stock"
        WEBHOOK_PING = "webhook.ping", "webhook.ping"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=40, choices=Type.choices)
    # What the event is about ("order" 42): events of one aggregate are kept
    # in the order they happened.
    aggregate = models.CharField(max_length=20)
    aggregate_id = models.BigIntegerField()
    # An order's events are numbered 1, 2, 3... (a receiver can see a gap).
    sequence = models.PositiveIntegerField(null=True, blank=True)
    data = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # When the webhook fan-out turned the event into deliveries.
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        indexes = [
            models.Index(
                fields=["id"],
                condition=models.Q(published_at__isnull=True),
                name="event_unpublished_idx",
            ),
            models.Index(fields=["aggregate", "aggregate_id", "id"], name="event_aggregate_idx"),
        ]

    def __str__(self):
        return f"{self.type} {self.aggregate} #{self.aggregate_id}"

    @property
    def webhook_id(self) -> str:
        """The id receivers de-duplicate on (`webhook-id`), stable across retries."""
        return f"evt_{self.uid.hex}"


class TaskRuns(models.Model):
    """How many runs of each Celery task ended in each state, across every
    worker on every host: the one count the web's `/metrics` can show for
    tasks that ran elsewhere (SPEC §11). One upsert per run
    (`core.task_metrics.record_task_run`), read at scrape time."""

    task = models.CharField(max_length=200)
    state = models.CharField(max_length=20)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "state"], name="task_runs_unique"),
        ]
        verbose_name_plural = "task runs"

    def __str__(self):
        return f"{self.task} {self.state}: {self.count}"
