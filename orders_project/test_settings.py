"""Settings for the test suite: the real settings, with fast password hashing
and in-memory e-mail. DATABASE_URL and REDIS_URL are honoured as usual.

A local `.env` (written by `make run`, with DEBUG on) is not read: tests
decide DEBUG themselves, and so do the processes they start (they inherit
READ_DOT_ENV=0). Under pytest-xdist each worker gets a Redis database of its
own (the base one plus its number), since the tests clear the cache."""

import os
import re

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-with-enough-length-and-entropy-1234")
os.environ["READ_DOT_ENV"] = "0"

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and os.environ.get("REDIS_URL"):
    _base = re.match(r"^(redis://[^/]+)/?(\d*)$", os.environ["REDIS_URL"])
    if _base:
        _db = int(_base.group(2) or 0) + int(_worker[2:])
        os.environ["REDIS_URL"] = f"{_base.group(1)}/{_db}"

from .settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SECURE_SSL_REDIRECT = False
# DEBUG is off here, so staff two-factor would default to on and every admin
# test would need a TOTP device. The admin's tests log in with force_login;
# the two-factor tests (backoffice/tests/test_two_factor.py, the browser test)
# turn it on with the `settings` fixture.
ADMIN_REQUIRE_2FA = False
# Texts are kept in memory (accounts.sms_backends.outbox), as mail is; the SNS
# backend has its own tests against moto's server.
SMS_BACKEND = "locmem"
SMS_ALLOWED_COUNTRIES = []
