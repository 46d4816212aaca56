import hashlib

from rest_framework import throttling

from core.throttling import FixedWindowMixin

from .models import User


class LoginAccountThrottle(FixedWindowMixin, throttling.SimpleRateThrottle):
    """Logins for one e-mail address, from wherever they come: guessing one
    account's password from many addresses gets no further than from one.
    (ClientScopedThrottle limits each address across accounts.)"""

    scope = "login_account"

    def get_cache_key(self, request, view):
        data = request.data
        email = data.get("email") if isinstance(data, dict) else None
        if not isinstance(email, str) or not email:
            return None  # the serializer will refuse the request
        digest = hashlib.sha256(User.objects.normalize_email(email).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest[:32]}
