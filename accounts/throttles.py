import hashlib

from rest_framework import throttling

from core.throttling import FixedWindowMixin

from .models import User
from .phones import normalize_phone


class EmailThrottle(FixedWindowMixin, throttling.SimpleRateThrottle):
    """Requests about one e-mail address (the body's `email`), from wherever
    they come. Subclasses set the scope."""

    def get_cache_key(self, request, view):
        data = request.data
        email = data.get("email") if isinstance(data, dict) else None
        if not isinstance(email, str) or not email:
            return None  # the serializer will refuse the request
        digest = hashlib.sha256(User.objects.normalize_email(email).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest[:32]}


class LoginAccountThrottle(EmailThrottle):
    """Logins for one e-mail address: guessing one account's password from
    many client addresses gets no further than from one. (ClientScopedThrottle
    limits each client address across accounts.)"""

    scope = "login_account"


class OtpRecipientThrottle(EmailThrottle):
    """One-time codes sent to one recipient, whoever asks: nobody can flood
    an inbox, or run up a phone's texts, from many client addresses. Keyed
    on the body's `phone` when it has one (in E.164, so every spelling of a
    number counts as one), else on its `email`."""

    scope = "otp_recipient"

    def get_cache_key(self, request, view):
        data = request.data
        phone = data.get("phone") if isinstance(data, dict) else None
        if phone is None:
            return super().get_cache_key(request, view)
        phone = normalize_phone(phone)
        if phone is None:
            return None  # the service will refuse the request
        digest = hashlib.sha256(f"phone:{phone}".encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest[:32]}
