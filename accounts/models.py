from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models

from .addresses import normalize_email


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
    """A customer or a staff member; the e-mail address is the login."""

    username = None
    email = models.EmailField("e-mail address", unique=True)
    # Bumped to end every session of the user at once (log out everywhere,
    # deactivation): tokens and API keys carry a stamp made from it.
    session_epoch = models.PositiveIntegerField(default=0, editable=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    objects = UserManager()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.email


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
    """A 6-digit login code sent by e-mail. Stored as an HMAC, never in clear."""

    email = models.EmailField()
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["email", "-created_at"], name="otp_email_created")]

    def __str__(self):
        return f"code for {self.email}"
