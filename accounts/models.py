from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone
from phonenumber_field.modelfields import PhoneNumberField

from .addresses import normalize_email
from .phones import MAX_LENGTH as PHONE_MAX_LENGTH


class UserManager(BaseUserManager):
    """Users log in with their e-mail address, compared in one canonical form
    (any case; the domain's Unicode and punycode spellings alike)."""

    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        """One form per mailbox: see `accounts.addresses`."""
        return normalize_email(email)

    def get_by_natural_key(self, email):
        return self.get(email=self.normalize_email(email))

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """A customer or a staff member. The e-mail address is the login for a
    password (and staff always have one); a customer who first signed in with
    a code by SMS has a phone and no e-mail yet. Both are unique when present
    (NULL when absent, never an empty string)."""

    username = None
    email = models.EmailField("e-mail address", unique=True, null=True, blank=True)
    phone = PhoneNumberField(
        "phone number",
        unique=True,
        null=True,
        blank=True,
        max_length=PHONE_MAX_LENGTH,
        help_text="In international form, e.g. +14155550123; login codes by SMS go here.",
    )
    # Bumped to end every session of the user at once (log out everywhere,
    # deactivation): tokens and API keys carry a stamp made from it.
    session_epoch = models.PositiveIntegerField(default=0, editable=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    objects = UserManager()

    class Meta:
        ordering = ["id"]
        constraints = [
            # Absent is NULL: "" would be one more value that must be unique.
            models.CheckConstraint(condition=~Q(email=""), name="user_email_not_empty"),
            models.CheckConstraint(condition=~Q(phone=""), name="user_phone_not_empty"),
        ]

    def __str__(self):
        return self.email or str(self.phone or "") or f"user #{self.pk}"

    def clean(self):
        super().clean()  # normalises the e-mail, turning a missing one into ""
        self.email = self.email or None

    def save(self, *args, **kwargs):
        # Forms and Django's own normalisation give "" for a missing value.
        deferred = self.get_deferred_fields()
        if "email" not in deferred:
            self.email = self.email or None
        if "phone" not in deferred:
            self.phone = self.phone or None
        super().save(*args, **kwargs)


class ApiKey(models.Model):
    """A key for an integration. It acts as its user; only its SHA-256 is
    stored, so the key itself is shown once, when it is made."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="What the key is for, e.g. the shop's name.")
    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The user's session stamp when the key was made (accounts.tokens): a
    # password change or an end of all sessions refuses the key from then on.
    stamp = models.CharField(max_length=32, editable=False, default="")
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, editable=False, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        """Not revoked, and made within the user's current session stamp."""
        from .tokens import session_stamp

        return self.revoked_at is None and self.stamp == session_stamp(self.user)


class OneTimeCode(models.Model):
    """A 6-digit login code sent by e-mail or by SMS: to `email` or to `phone`,
    exactly one of them set. Stored as an HMAC, never in clear."""

    email = models.EmailField(blank=True, default="")
    phone = models.CharField(max_length=PHONE_MAX_LENGTH, blank=True, default="")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["email", "-created_at"], name="otp_email_created"),
            models.Index(fields=["phone", "-created_at"], name="otp_phone_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(email="") & ~Q(phone="")) | (~Q(email="") & Q(phone="")),
                name="otp_one_recipient",
            )
        ]

    def __str__(self):
        return f"code for {self.email or self.phone}"


class SmsMessage(models.Model):
    """A text owed to a phone: the SMS outbox (`accounts.sms`). Written in the
    transaction that needs it sent, sent by a worker after commit, swept up
    again if its task was lost. The body holds a live login code, so it is
    blanked as soon as the message is sent or given up."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        SENT = "sent", "sent"
        FAILED = "failed", "failed for good"

    phone = models.CharField(max_length=PHONE_MAX_LENGTH)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A message still unsent by then is given up (a login code that has expired).
    expires_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # The provider's id for the message (SNS MessageId), to trace it there.
    provider_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "SMS message"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="queued"),
                name="sms_queued_idx",
            ),
            models.Index(fields=["created_at"], name="sms_created_idx"),
        ]

    def __str__(self):
        return f"SMS #{self.pk} to {self.phone}"
