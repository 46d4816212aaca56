import hashlib

from rest_framework import throttling

from core.throttling import FixedWindowMixin

from .models import User


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
    """One-time codes mailed to one address, whoever asks: nobody can flood
    an inbox from many client addresses."""

    scope = "otp_recipient"
