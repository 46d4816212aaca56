"""Settings for the Orders project, read from the environment (SPEC §2).

Local development needs no configuration: `make run` sets DEBUG=1 and the
defaults give a SQLite file, a file-system Celery broker and a local-memory
cache. Production (DEBUG off) refuses to start without SECRET_KEY.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

import environ
from corsheaders.defaults import default_headers as default_cors_headers
from django.core.exceptions import ImproperlyConfigured

from core import dbconfig

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env file (`make run` writes one: DEBUG on, a generated SECRET_KEY) is
# a convenience for development; real environment variables win over it, and
# READ_DOT_ENV=0 ignores it (the test suite does).
if (BASE_DIR / ".env").is_file() and env.bool("READ_DOT_ENV", default=True):
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment, or set DEBUG=1 for local "
            "development only."
        )
    SECRET_KEY = "django-insecure-local-development-key-not-for-production"  # noqa: S105

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
# On Kubernetes the pod's own address (the downward API's status.podIP, set
# by deploy/k8s/): Prometheus scrapes pods by address, so its requests carry
# that address as their Host. No other address is allowed by this.
POD_IP = env.str("POD_IP", default="").strip()
if POD_IP:
    ALLOWED_HOSTS.append(f"[{POD_IP}]" if ":" in POD_IP else POD_IP)
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_HEADERS = (*default_cors_headers, "x-api-key", "idempotency-key", "x-request-id")
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Idempotent-Replayed", "Retry-After"]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django.contrib.admin, with the back office's site as `admin.site`.
    "backoffice.apps.AdminSiteConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "django_celery_beat",
    # Staff two-factor in the admin (SPEC §11): TOTP devices and backup codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # Brute-force lockout of logins (SPEC §11): see "Login lockout" below.
    "axes",
    # The project's apps, from the bottom layer up (docs/architecture.md).
    "core",
    "accounts",
    "inventory",
    "orders",
    "webhooks",
    "backups",
    "backoffice",
]

MIDDLEWARE = [
    # Outermost: every later middleware, view and log line sees the request id.
    "core.request_id.RequestIdMiddleware",
    # Request counts and latencies (/metrics), by the final status of every answer.
    "core.metrics.MetricsMiddleware",
    # Outside the error rewriting, so that every response — a 413 from the
    # body limit or an error rewritten into JSON included — carries HSTS,
    # nosniff, the referrer policy and X-Frame-Options.
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Any error response that is not already JSON is rewritten into the SPEC's
    # error shape on its way out (the admin's own pages excepted).
    "core.errors.JsonErrorMiddleware",
    "core.limits.RequestBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # The admin's sessions, user, second factor and messages: skipped for /api/
    # requests, which authenticate with a token or key (core/middleware.py).
    # CSRF stays Django's own (`check --deploy` looks for it; DRF exempts its views).
    "core.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.middleware.AuthenticationMiddleware",
    # After a signed-in user's write, their reads stay on the primary for
    # REPLICA_PIN_SECONDS (read-your-writes; core/replicas.py).
    "core.replicas.ReplicaPinMiddleware",
    # request.user.is_verified(): whether this session gave a second factor.
    "core.middleware.OTPMiddleware",
    "core.middleware.MessageMiddleware",
    # Last, as axes requires: turns a login on a locked pair into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "orders_project.urls"
WSGI_APPLICATION = "orders_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------

DATABASES = {
    # An empty DATABASE_URL counts as unset.
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    ),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Past one machine (SPEC §12, docs/scaling.md). DATABASE_POOLER=pgbouncer when
# DATABASE_URL is a PgBouncer in transaction mode; DATABASE_POOL=1 for
# psycopg's pool in each process instead (not both).
DATABASE_POOLER = env.str("DATABASE_POOLER", default="").strip().lower()
DATABASE_POOL = env.bool("DATABASE_POOL", default=False)
# Streaming replicas (comma-separated postgres:// URLs): lag-tolerant reads go
# there (core/replicas.py); writes, transactions and a user's reads for
# REPLICA_PIN_SECONDS after their write stay on the primary.
DATABASE_REPLICA_URLS = env.list("DATABASE_REPLICA_URLS", default=[])
REPLICA_PIN_SECONDS = env.int("REPLICA_PIN_SECONDS", default=10)
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=30.0)
# How long a replica's state (answers, lag) is trusted before it is asked again.
REPLICA_CHECK_SECONDS = env.float("REPLICA_CHECK_SECONDS", default=5.0)
if DATABASES["default"]["ENGINE"] == dbconfig.POSTGRESQL:
    # An unreachable database must fail a request quickly, not hang it.
    dbconfig.postgres_options(
        DATABASES["default"],
        connect_timeout=env.int("DATABASE_CONNECT_TIMEOUT", default=2),
        pooler=DATABASE_POOLER,
        pool={
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=8),
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=5.0),
        }
        if DATABASE_POOL
        else None,
    )
    for _number, _url in enumerate(DATABASE_REPLICA_URLS, start=1):
        DATABASES[f"replica{_number}"] = dbconfig.replica_config(
            DATABASES["default"],
            env.db_url_config(_url),
            connect_timeout=env.int("REPLICA_CONNECT_TIMEOUT", default=2),
        )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat share the file in `make run`: WAL lets
    # readers run beside a writer, IMMEDIATE takes the write lock up front so
    # two writers queue instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
if (DATABASE_REPLICA_URLS or DATABASE_POOLER or DATABASE_POOL) and (
    DATABASES["default"]["ENGINE"] != dbconfig.POSTGRESQL
):
    raise ImproperlyConfigured(
        "DATABASE_REPLICA_URLS, DATABASE_POOLER and DATABASE_POOL need a PostgreSQL DATABASE_URL."
    )
# The replicas' aliases; the router keeps every write on the primary.
DATABASE_REPLICAS = [alias for alias in DATABASES if alias.startswith("replica")]
DATABASE_ROUTERS = ["core.replicas.PrimaryReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
# Axes' backend first: it refuses a locked-out pair before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Redis: cache, throttling, Celery broker --------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
REDIS_TIMEOUT = env.float("REDIS_TIMEOUT", default=1.0)
if DATABASE_REPLICAS and not REDIS_URL:
    # Read-your-writes pins a user to the primary in Redis, for every process.
    raise ImproperlyConfigured("DATABASE_REPLICA_URLS needs REDIS_URL (read-your-writes pins).")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "orders",
            "OPTIONS": {
                "socket_connect_timeout": REDIS_TIMEOUT,
                "socket_timeout": REDIS_TIMEOUT,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Passwords --------------------------------------------------------------------

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # Kept so that hashes made before a switch still verify (and get upgraded).
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- I18n, static -----------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns about a missing folder
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Backups (SPEC §10) --------------------------------------------------------------

# Where order copies and exports go: a folder, or S3 and anything that speaks
# its protocol (MinIO, moto's server) through django-storages.
BACKUP_STORAGE_URL = env.str("BACKUP_STORAGE_URL", default="") or (
    f"file://{BASE_DIR / 'var' / 'backups'}"
)
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
# The AWS region of the backups' S3 bucket and of SNS (texts).
AWS_REGION = env.str("AWS_REGION", default="us-east-1")
if BACKUP_STORAGE_URL.startswith("s3://"):
    _bucket, _, _prefix = BACKUP_STORAGE_URL.removeprefix("s3://").partition("/")
    STORAGES["backups"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": _bucket,
            "location": _prefix.strip("/"),
            "endpoint_url": AWS_S3_ENDPOINT_URL,
            "region_name": AWS_REGION,
            # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are read by boto3.
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,  # download links are presigned
            "signature_version": "s3v4",
            "querystring_expire": 900,
            "addressing_style": "path" if AWS_S3_ENDPOINT_URL else None,
        },
    }
elif BACKUP_STORAGE_URL.startswith("file://"):
    STORAGES["backups"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": BACKUP_STORAGE_URL.removeprefix("file://"),
            "allow_overwrite": True,
            "base_url": None,
        },
    }
else:
    raise ImproperlyConfigured(
        f"BACKUP_STORAGE_URL must be file:///path or s3://bucket/prefix, not {BACKUP_STORAGE_URL!r}"
    )
# How often the maintenance worker writes the order copies that are due.
BACKUP_COPY_SECONDS = env.int("BACKUP_COPY_SECONDS", default=30)
# Without a collectstatic run (make run, tests) WhiteNoise finds files in the apps.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# --- Security (clean `check --deploy` in production) --------------------------------

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Probes and Prometheus speak plain HTTP on the internal network.
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)/?$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
# Request bodies over this size answer 413 (DATA_UPLOAD_MAX_MEMORY_SIZE).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BODY_BYTES", default=1024 * 1024)

# --- E-mail -------------------------------------------------------------------------

vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Orders <orders@localhost>")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=5)

# --- REST framework -------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.SessionJWTAuthentication",
        "accounts.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        "core.throttling.AnonThrottle",
        "core.throttling.UserThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON_RATE", default="3000/min"),
        "user": env.str("THROTTLE_USER_RATE", default="20000/min"),
        # Per client address:
        "login": env.str("THROTTLE_LOGIN_RATE", default="60/min"),
        "register": env.str("THROTTLE_REGISTER_RATE", default="30/min"),
        "refresh": env.str("THROTTLE_REFRESH_RATE", default="120/min"),
        "otp_start": env.str("THROTTLE_OTP_START_RATE", default="5/min"),
        "otp_verify": env.str("THROTTLE_OTP_VERIFY_RATE", default="60/min"),
        # Per e-mail address, whatever the client:
        "login_account": env.str("THROTTLE_LOGIN_ACCOUNT_RATE", default="10/min"),
        # One-time codes mailed to one address (on top of 10 an hour, in the database).
        "otp_recipient": env.str("THROTTLE_OTP_RECIPIENT_RATE", default="3/10min"),
    },
    # Behind a proxy set NUM_PROXIES so the client address comes from
    # X-Forwarded-For; by default it is REMOTE_ADDR (a header can be forged).
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_standardized_errors.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "core.exception_handler.ExceptionHandler",
    # A 500 is JSON in DEBUG too: clients never see an HTML page or a traceback.
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
    # A 401 may also carry simplejwt's codes (token_not_valid, ...).
    "ERROR_SCHEMAS": {401: "core.openapi.ErrorResponse401Serializer"},
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    # Refreshing is accounts.services.token_refresh: it rotates the refresh
    # token and blacklists the old one, once, atomically (these two say so to
    # anything of simplejwt's that reads them).
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "AUTH_TOKEN_CLASSES": ("accounts.tokens.SessionAccessToken",),
    "UPDATE_LAST_LOGIN": False,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Orders API",
    "DESCRIPTION": (
        "Order management: accounts, catalogue and stock, orders. Authenticate with "
        "`Authorization: Bearer <access JWT>` or `X-API-Key: <key>`. Every error has the "
        "shape `{type, errors: [{code, detail, attr}]}`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        **{
            name: f"drf_standardized_errors.openapi_serializers.{name}.choices"
            for name in [
                "ValidationErrorEnum",
                "ClientErrorEnum",
                "ServerErrorEnum",
                *(f"ErrorCode{code}Enum" for code in (403, 404, 405, 406, 415, 429, 500)),
            ]
        },
        "ErrorCode401Enum": "core.openapi.ErrorCode401.choices",
        "OrderStatusEnum": "orders.statuses.OrderStatus.choices",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_standardized_errors.openapi_hooks.postprocess_schema_enums",
        "core.openapi.list_index_patterns",
    ],
}

# --- Shop ---------------------------------------------------------------------------

# One currency for the whole shop (ISO 4217), shown on products and orders.
CURRENCY = env.str("CURRENCY", default="USD").upper()
# How long a retry with the same Idempotency-Key replays the first response.
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
# What one customer may hold, so that one account cannot take the whole stock:
# units of a product per order line (409 limit_exceeded), and orders still
# reserving stock (pending or processing; 429 too_many_open_orders). Staff
# placing orders for customers are not limited.
MAX_UNITS_PER_LINE = env.int("MAX_UNITS_PER_LINE", default=100)
MAX_OPEN_ORDERS_PER_CUSTOMER = env.int("MAX_OPEN_ORDERS_PER_CUSTOMER", default=50)

# --- Accounts -----------------------------------------------------------------------

# An address whose part before the @ is not ASCII is refused for new accounts
# unless this is on (look-alike letters; see accounts/addresses.py).
EMAIL_ALLOW_UNICODE_LOCAL_PART = env.bool("EMAIL_ALLOW_UNICODE_LOCAL_PART", default=False)
# A login session (the chain of refreshes from one login) lasts at most this long.
JWT_SESSION_MAX_DAYS = env.int("JWT_SESSION_MAX_DAYS", default=30)
# The admin's messages (one of them shows a new API key, once) stay on the
# server, never in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

OTP_TTL_SECONDS = env.int("OTP_TTL_SECONDS", default=300)
OTP_MAX_ATTEMPTS = env.int("OTP_MAX_ATTEMPTS", default=5)
# Wrong codes an address may try in 24 hours, whatever the number of codes:
# a new code resets a code's tries, not this budget.
OTP_MAX_FAILURES_PER_DAY = env.int("OTP_MAX_FAILURES_PER_DAY", default=10)
# Codes one phone may be sent in an hour (an e-mail address: 10). Texts cost
# money and are abused for toll fraud.
OTP_SMS_STARTS_PER_HOUR = env.int("OTP_SMS_STARTS_PER_HOUR", default=5)

# --- SMS (one-time codes by text; accounts/sms.py) --------------------------------------

# Where texts go: `console` (the log; development), `locmem` (tests), `sns`
# (Amazon SNS through boto3), or a dotted path to a backend class.
SMS_BACKEND = env.str("SMS_BACKEND", default="console")
# ISO 3166-1 region codes codes may be texted to (comma-separated, e.g.
# "US,CA"); empty: any. Premium-rate, shared-cost and invalid numbers are
# refused wherever they are (accounts/phones.py).
SMS_ALLOWED_COUNTRIES = env.list("SMS_ALLOWED_COUNTRIES", default=[])
# Amazon SNS: the region (AWS_REGION, above, shared with the backups),
# credentials (empty: boto3's own chain, e.g. an instance or task role) and
# endpoint (empty: AWS; moto's server in tests).
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="")
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="")
AWS_SNS_ENDPOINT_URL = env.str("AWS_SNS_ENDPOINT_URL", default="")
# The sender name shown where carriers allow one (SNS SenderID); empty: none.
SMS_SENDER_ID = env.str("SMS_SENDER_ID", default="")
# Seconds to connect to, and then to hear from, the SMS provider.
SMS_SEND_TIMEOUT = env.float("SMS_SEND_TIMEOUT", default=5.0)
# How often beat sweeps for texts whose task was lost, when the schedule is created.
SMS_SWEEP_SECONDS = env.int("SMS_SWEEP_SECONDS", default=30)
# Sent and failed texts are kept this long (the admin's log), then deleted.
SMS_RETENTION_DAYS = env.int("SMS_RETENTION_DAYS", default=30)

# Staff two-factor (SPEC §11): with it, every admin page needs a session
# verified by a TOTP code or a backup code, and a member without a device
# enrols first. Off by default in development (`make run` sets DEBUG=1).
ADMIN_REQUIRE_2FA = env.bool("ADMIN_REQUIRE_2FA", default=not DEBUG)
# The name authenticator apps show next to the account.
OTP_TOTP_ISSUER = "Orders back office"
# Device secrets and backup codes are never shown in the admin's device
# pages: a staff member who can view devices must not be able to copy them.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Login lockout (django-axes, SPEC §11): after AXES_FAILURE_LIMIT failed logins
# for one account from one client address, that pair is locked for the
# cool-off, counted from the failure that locked it (failures while locked do
# not extend it). The admin's login and the API's token endpoint share the
# count. Attempts, lockouts and failures are listed in the admin; deleting an
# attempt there unlocks its pair (`manage.py axes_reset_username <e-mail>`: every
# pair of that account).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_USERNAME_CALLABLE = "accounts.lockout.lockout_username"
# The client address as the API's throttles derive it (NUM_PROXIES above).
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"

# --- Celery -------------------------------------------------------------------------

CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost//"
if not REDIS_URL:
    # kombu's file-system transport: a broker that needs no server, for `make run`.
    CELERY_BROKER_DIR = BASE_DIR / ".celery" / "broker"
    CELERY_BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR),
        "data_folder_out": str(CELERY_BROKER_DIR),
        "control_folder": str(CELERY_BROKER_DIR.parent / "control"),
        "store_processed": False,
    }
    # The file-system transport has no fan-out exchange for remote control.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": REDIS_TIMEOUT,
        "socket_timeout": REDIS_TIMEOUT * 5,
        # A message taken but not acknowledged (acks_late, its worker gone) goes
        # to another worker after this long: longer than any task runs or waits.
        "visibility_timeout": 3600,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
# No result backend, so nothing to clean: without this beat would add its own
# daily `celery.backend_cleanup` to the schedules staff see in the admin.
CELERY_RESULT_EXPIRES = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# Failure policy: a task is acknowledged when it has finished, not when it
# starts, and goes back to the queue if its worker dies; every task is safe to
# run twice. One message at a time per worker process, so none waits behind a
# long task in another's prefetch buffer.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Queues by workload (SPEC §12, docs/background-work.md): one kind of work
# never waits behind another, e.g. a slow webhook receiver never delays order
# processing. A worker (or a group of them) per queue: Procfile, compose, k8s.
CELERY_QUEUES_BY_WORKLOAD = ("orders", "notifications", "webhooks", "maintenance")
# Declared, so a worker started without -Q serves all four (one machine).
CELERY_TASK_QUEUES = {
    name: {"exchange": name, "routing_key": name} for name in CELERY_QUEUES_BY_WORKLOAD
}
# Every project task is named here (orders_project/tests/test_celery_queues.py
# checks it). A task without a route, Celery's own included, goes to the
# default queue: `maintenance`, which a worker always consumes, and where a
# forgotten route can delay neither orders nor webhooks nor messages.
CELERY_TASK_DEFAULT_QUEUE = "maintenance"
CELERY_TASK_ROUTES = {
    "orders.tasks.process_pending_orders": {"queue": "orders"},
    "orders.tasks.send_order_emails": {"queue": "notifications"},
    "accounts.tasks.sms_send": {"queue": "notifications"},
    "accounts.tasks.sms_sweep": {"queue": "notifications"},
    "webhooks.tasks.deliver_webhooks": {"queue": "webhooks"},
    "backups.tasks.copy_orders": {"queue": "maintenance"},
    "backups.tasks.export_orders": {"queue": "maintenance"},
    "inventory.tasks.send_low_stock_report": {"queue": "maintenance"},
    "orders.tasks.housekeeping": {"queue": "maintenance"},
    "accounts.tasks.housekeeping": {"queue": "maintenance"},
    "webhooks.tasks.housekeeping": {"queue": "maintenance"},
}
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 30
# Log through LOGGING below, so task log lines carry the request id too; what a
# task prints (the console e-mail backend) goes to stdout as it is.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_REDIRECT_STDOUTS = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# Order processing: the interval is the initial value of the schedule that
# orders/schedules.py creates after the first migrate; after that it is edited
# in the admin.
ORDER_PROCESSING_INTERVAL = env.int("ORDER_PROCESSING_INTERVAL", default=120)
ORDER_PROCESSING_BATCH_SIZE = env.int("ORDER_PROCESSING_BATCH_SIZE", default=500)
# A run stops taking new batches after this many seconds; the next run goes on.
ORDER_PROCESSING_TIME_BUDGET = CELERY_TASK_SOFT_TIME_LIMIT * 0.8
# Who gets the daily low-stock report; empty: every active staff member.
LOW_STOCK_REPORT_RECIPIENTS = env.list("LOW_STOCK_REPORT_RECIPIENTS", default=[])

# --- Logging: every line carries the request id ----------------------------------------

# `text` (the default): one readable line per record. `json`: one JSON object
# per line (core/logformat.py), for log shippers.
LOG_FORMAT = env.str("LOG_FORMAT", default="text").lower()
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.request_id.RequestIdLogFilter"}},
    "formatters": {
        "default": {
            "format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s",
        },
        "json": {"()": "core.logformat.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "json" if LOG_FORMAT == "json" else "default",
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own loggers print through the same handler (with the request id).
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # The access line comes from RequestIdMiddleware (it carries the id).
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "core.access": {"level": env.str("ACCESS_LOG_LEVEL", default="INFO")},
        "django.db.backends": {"level": "WARNING"},
        # One INFO line per webhook sent would drown the worker's log; the
        # deliveries' log is in the database (and the admin).
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Failures and lockouts are WARNINGs; below that axes narrates every login.
        "axes": {"level": env.str("AXES_LOG_LEVEL", default="WARNING")},
    },
}

CSRF_FAILURE_VIEW = "core.errors.csrf_failure"

# --- Operations: metrics and error tracking (SPEC §11, docs/operations.md) -------------------

# Who may read /metrics (and a worker's metrics endpoint): a bearer token, and/or
# client addresses or CIDR networks (comma-separated; the client address as
# NUM_PROXIES derives it). Neither set: /metrics answers 404 to everyone.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
for _entry in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_entry.strip(), strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_IPS: {_entry!r} is not an address or a network."
        ) from None
# A Celery worker serves its task metrics on this port (0: it does not);
# set it on workers only. Scrape each worker there: docs/operations.md.
CELERY_METRICS_PORT = env.int("CELERY_METRICS_PORT", default=0)
CELERY_METRICS_ADDRESS = env.str("CELERY_METRICS_ADDRESS", default="0.0.0.0")  # noqa: S104

# Sentry for the web processes and the workers, only with a DSN. No personal
# data is sent (core/sentry.py); every event is tagged with its request id.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="")
SENTRY_RELEASE = env.str("SENTRY_RELEASE", default="")
# Share of requests and tasks traced for performance (0: errors only).
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
if SENTRY_DSN:
    from core.sentry import sentry_init

    sentry_init(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        release=SENTRY_RELEASE,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )

# --- Webhooks (SPEC §9) -------------------------------------------------------------------

# Seconds a receiver has to answer a delivery with a 2xx.
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
# Seconds to wait after each failed try (with ±10 % jitter; a longer
# Retry-After is honoured); after the last, the delivery has failed.
WEBHOOK_RETRY_SCHEDULE = env.list(
    "WEBHOOK_RETRY_SCHEDULE",
    cast=int,
    default=[5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
)
# Development only: allow http and private, loopback and link-local targets.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
# A subscription whose every delivery failed this long is turned off (staff mailed).
WEBHOOK_DISABLE_AFTER_DAYS = env.int("WEBHOOK_DISABLE_AFTER_DAYS", default=5)
# Deliveries (and published events) older than this are deleted.
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=14)
# How often beat sweeps for due deliveries, when the schedule is created.
WEBHOOK_SWEEP_SECONDS = env.int("WEBHOOK_SWEEP_SECONDS", default=10)
