"""What the backups know (SPEC §10): which order copies are due, and the
exports made."""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class OrderCopy(models.Model):
    """The copy of one order in the backup storage (`orders/{id}.json`).

    `due_sequence` is the order's latest event number the outbox has
    published; `copied_sequence` the one whose state the stored copy holds.
    A copy is due while the first is greater; both only grow, so an older
    state never overwrites a newer one."""

    order_id = models.BigIntegerField(primary_key=True)
    due_sequence = models.PositiveIntegerField(default=0)
    copied_sequence = models.PositiveIntegerField(default=0)
    copied_at = models.DateTimeField(null=True, blank=True)
    # A failed write (the storage is down) is tried again at the next sweep.
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ("order_id",)
        verbose_name = "order copy"
        verbose_name_plural = "order copies"
        indexes = [
            models.Index(
                fields=["order_id"],
                condition=Q(due_sequence__gt=F("copied_sequence")),
                name="order_copy_due_idx",
            ),
        ]

    def __str__(self):
        return f"orders/{self.order_id}.json"

    @property
    def is_due(self) -> bool:
        return self.due_sequence > self.copied_sequence


class Export(models.Model):
    """A full export (`exports/orders-<UTC date-time>.jsonl.gz` and its
    manifest), as `backup_orders` wrote it."""

    name = models.CharField(max_length=200, unique=True)
    manifest_name = models.CharField(max_length=200)
    count = models.PositiveIntegerField()
    size = models.PositiveBigIntegerField(help_text="Bytes of the compressed file.")
    sha256 = models.CharField(max_length=64)
    since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self):
        return self.name
