"""The admin's middleware, skipped for API requests.

Sessions, the session user, the second factor and messages serve the admin:
the API authenticates every request with a token or a key (DRF), never with
the session cookie. Each class here is the middleware it names, doing nothing
for a path under `/api/` — subclasses, so the admin's checks that they are
installed still hold. (CSRF stays Django's own: `check --deploy` asks for it
by name, and DRF's views are exempt from it.)
"""

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django_otp import middleware as otp

API_PREFIX = "/api/"


class _SkippedForApi:
    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_SkippedForApi, sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(_SkippedForApi, auth.AuthenticationMiddleware):
    pass


class OTPMiddleware(_SkippedForApi, otp.OTPMiddleware):
    pass


class MessageMiddleware(_SkippedForApi, messages.MessageMiddleware):
    pass
