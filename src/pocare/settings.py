"""Django settings for POCare, read from the environment.

Every value that differs between a laptop demo and a production network comes from an
environment variable (twelve-factor style), so one settings module serves both:

- ``DATABASE_URL``          SQLite under ``var/`` by default; ``postgres://…`` in production.
- ``POCARE_SECRET_KEY``     required when ``POCARE_ENV=production``.
- ``POCARE_ALLOWED_HOSTS``  comma-separated host names.
- ``POCARE_ENV``            ``development`` (default) or ``production`` (HTTPS-only cookies, HSTS).
- ``POCARE_VAR_DIR``        where the embedded database and exports live (default ``./var``).
- ``POCARE_IDLE_LOGOUT_SECONDS``  inactivity logout (default 900 s, A11-IAM).
- ``POCARE_LEDGER_LANES``   lanes a site's audit chain may spread over under concurrent writes
                            (PostgreSQL; default 16, 1 to 32; docs/ledger.md).
- ``POCARE_TRUSTED_PROXY``  address of the TLS-terminating proxy whose X-Forwarded-Proto/-For are
                            believed (production; docs/access.md "Production").
- ``POCARE_DEBUG``          ``1`` shows Django's debug pages (developers only; off by default).
- ``POCARE_ANCHOR_KEY``     the Ed25519 private key that signs the trail's digests, a file outside the
                            database (default ``var/anchor/ed25519.pem``, mode 0600; docs/ledger.md "Anchors").
- ``POCARE_PATIENT_KEYS``   the keys that encrypt patients' identifying data, a JSON file outside the
                           database (made on first use outside production).
- ``POCARE_ANCHOR_TRUSTED_KEYS``  comma-separated public key files whose digests verify (default: the
                            key's own ``.pub``; name the old ones here after a rotation).
- ``POCARE_DIGEST_DIR``     the directory digest store (default ``var/digests``); production plugs object
                            storage with a retention lock into ``STORAGES["digests"]`` instead.
- ``POCARE_CACHE_URL``, ``POCARE_STORAGE``, ``POCARE_FILES_DIR``, ``POCARE_S3_*``, ``POCARE_MONITOR_TOKEN``,
  ``POCARE_MONITOR_ADDRESSES``, ``POCARE_ANCHOR_MAX_AGE_MINUTES``, ``POCARE_LOG_FORMAT``: several servers,
                            monitoring and logs (the block near the end; docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

PACKAGE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("POCARE_VAR_DIR", Path.cwd() / "var")).resolve()

ENVIRONMENT = os.environ.get("POCARE_ENV", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured("POCARE_ENV must be 'development' or 'production'")
PRODUCTION = ENVIRONMENT == "production"

# Off by default everywhere, the demo included: Django's debug pages list the URL map and settings.
DEBUG = os.environ.get("POCARE_DEBUG", "0") == "1"

_secret = os.environ.get("POCARE_SECRET_KEY", "")
if PRODUCTION and len(_secret) < 50:
    raise ImproperlyConfigured("POCARE_SECRET_KEY must be set (50+ characters) in production")
# The development key is public on purpose: it signs nothing that leaves a laptop.
SECRET_KEY = _secret or "pocare-development-only-key-not-secret-0123456789abcdefghijklmnop"

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("POCARE_ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost").split(",")
    if h.strip()
]
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("POCARE_ALLOWED_HOSTS must name the host(s) POCare is served as")
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("POCARE_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "axes",
    "pocare.core",
    "pocare.ledger",
    "pocare.accounts",
    "pocare.ops",
    "pocare.jobs",  # the job queue and scheduler (docs/jobs.md)
    "pocare.trail",
    "pocare.network",
    "pocare.masterfile",
    "pocare.training",
    "pocare.quality",
    "pocare.custody",
    "pocare.manufacturing",
    "pocare.release",
    "pocare.analytics",
    "pocare.patients",  # referral to follow-up, FHIR (docs/patients.md)
    "pocare.supply",  # suppliers, stock by location and lot, movements (docs/supply.md)
    "pocare.costs",  # the signed cost model, the cost of each batch (docs/costs.md)
    "pocare.planning",
    "pocare.web",
    "pocare.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "pocare.ledger.middleware.RequestIdMiddleware",
    "pocare.ops.middleware.RequestLogMiddleware",  # times the request, logs it (docs/operations.md)
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After the session, before CommonMiddleware (Django's order): the staff's chosen language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "pocare.core.middleware.InputBoundsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "pocare.accounts.middleware.AccountPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it hands a throttled sign-in back to POCare's own login page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "pocare.urls"
WSGI_APPLICATION = "pocare.wsgi.application"
ASGI_APPLICATION = "pocare.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "pocare.web.context.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'pocare.sqlite3'}",
        conn_max_age=int(os.environ.get("POCARE_DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # BEGIN IMMEDIATE takes the write lock at the start of a transaction, so two writers never
        # deadlock on a lock upgrade; the ledger relies on it to serialize chain appends.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    # Tests use a file, not memory, so that concurrent writers really are separate connections.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("POCARE_TEST_SQLITE") or str(VAR_DIR / "test-suite.sqlite3")
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side binding lets PostgreSQL prepare the statements POCare repeats most (the ledger
    # append above all); the benchmark measured about half the server CPU per append.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 2})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a throttled username + address before any password is checked (django-axes).
    "pocare.accounts.backends.ThrottleBackend",
    "pocare.accounts.backends.PolicyBackend",
    # Hospital sign-on: answers only a call that names an OpenID provider (docs/access.md).
    "pocare.accounts.oidc.HospitalSignOnBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "web:home"

# Argon2id first (P11-300); the others only verify hashes made before a hasher change.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The audit trail: how many lanes (hash chains of their own) one site's appends may spread over
# when several writers append at once. PostgreSQL only; SQLite serializes every write anyway.
try:
    POCARE_LEDGER_LANES = int(os.environ.get("POCARE_LEDGER_LANES", "16"))
except ValueError:
    POCARE_LEDGER_LANES = 0
if not 1 <= POCARE_LEDGER_LANES <= 32:
    raise ImproperlyConfigured("POCARE_LEDGER_LANES must be a whole number from 1 to 32")

# Account policy (P11-300, A11-IAM). The account lock counts failed *signatures* only (an
# authenticated person re-entering their password); failed logins are throttled per user id and
# client address by django-axes below, so nobody can lock someone else's account from outside.
POCARE_LOCKOUT_THRESHOLD = int(os.environ.get("POCARE_LOCKOUT_THRESHOLD", "5"))
# Sign-in throttling (docs/access.md): django-axes counts failures in its database tables (shared by
# every server) per user id AND client address; after AXES_FAILURE_LIMIT that pair waits out the
# cool-off, while the same person signs in from their own workstation.
AXES_ENABLED = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = int(os.environ.get("POCARE_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=int(os.environ.get("POCARE_LOGIN_COOLOFF_MINUTES", "15")))
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are recorded in the ledger (accounts.logged_in)
AXES_USERNAME_FORM_FIELD = "username"
# The message and status are POCare's own (one for every refusal): axes returns the login page.
AXES_LOCKOUT_CALLABLE = "pocare.accounts.backends.lockout_response"
# The client address is REMOTE_ADDR: behind POCARE_TRUSTED_PROXY (below), waitress writes the
# forwarded client address there and drops X-Forwarded-For from every other peer.
AXES_CLIENT_IP_CALLABLE = "pocare.accounts.backends.client_ip"
# A looser limit per client address over all user ids (password spraying); axes's single failure
# limit cannot express it, so PolicyBackend reads axes's own attempt table.
POCARE_LOGIN_IP_FAILURE_LIMIT = int(os.environ.get("POCARE_LOGIN_IP_FAILURE_LIMIT", "50"))
# API tokens: default and longest life; the inspector's longest access.
POCARE_TOKEN_DEFAULT_DAYS = int(os.environ.get("POCARE_TOKEN_DEFAULT_DAYS", "90"))
POCARE_TOKEN_MAX_AGE_DAYS = int(os.environ.get("POCARE_TOKEN_MAX_AGE_DAYS", "365"))
POCARE_INSPECTOR_MAX_DAYS = int(os.environ.get("POCARE_INSPECTOR_MAX_DAYS", "90"))
POCARE_PASSWORD_HISTORY = int(os.environ.get("POCARE_PASSWORD_HISTORY", "5"))
POCARE_PASSWORD_MAX_AGE_DAYS = int(os.environ.get("POCARE_PASSWORD_MAX_AGE_DAYS", "90"))
POCARE_IDLE_LOGOUT_SECONDS = int(os.environ.get("POCARE_IDLE_LOGOUT_SECONDS", "900"))
SESSION_COOKIE_AGE = 12 * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- Hospital sign-on (OpenID Connect; docs/access.md "Hospital sign-on") -------------------------
# The providers come from a JSON file named by POCARE_OIDC_PROVIDERS_FILE (a list of objects: key,
# name, issuer, client_id, client_secret_env or client_secret_file, sites, and optionally
# subject_claim, link_by_email, scopes). Secrets stay in the environment or a file, never in the
# database. Checked by pocare.accounts.oidc.providers() (and `pocare check`). None: password only.
POCARE_OIDC_PROVIDERS: list[dict[str, Any]] = []
_oidc_file = os.environ.get("POCARE_OIDC_PROVIDERS_FILE", "")
if _oidc_file:
    import json as _json

    try:
        POCARE_OIDC_PROVIDERS = _json.loads(Path(_oidc_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as _exc:
        raise ImproperlyConfigured(f"POCARE_OIDC_PROVIDERS_FILE {_oidc_file}: {_exc}") from _exc
# Clock skew allowed on an ID token's exp/iat (seconds), and how long a provider's discovery
# document and keys are kept in the cache before they are fetched again.
POCARE_OIDC_LEEWAY_SECONDS = int(os.environ.get("POCARE_OIDC_LEEWAY_SECONDS", "30"))
POCARE_OIDC_DISCOVERY_SECONDS = int(os.environ.get("POCARE_OIDC_DISCOVERY_SECONDS", "3600"))
POCARE_OIDC_TIMEOUT_SECONDS = int(os.environ.get("POCARE_OIDC_TIMEOUT_SECONDS", "10"))
# --- end hospital sign-on ------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the cookie-less meta tag; see base.html

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
# The languages of the pages and of the patients' documents (docs/patients.md, "Languages"). English
# is British English, the site's language before it spoke others, so its dates and formats stay as
# they were; a browser asking for en-US gets it too. Patients' documents use en, es, pt.
LANGUAGES = [("en-gb", "English"), ("es", "Español"), ("pt", "Português")]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
# Collected static files (production); development serves them from the apps through WhiteNoise.
STATIC_ROOT = Path(os.environ["POCARE_STATIC_ROOT"]) if os.environ.get("POCARE_STATIC_ROOT") else (
    VAR_DIR / "static" if PRODUCTION else None
)
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# The trail's anchors (docs/ledger.md, "Anchors"): the signing key lives in a file the database never
# holds, and the signed digests go to a store the database user cannot change. The default store is a
# directory of read-only files written once (O_EXCL, never overwritten); in production point
# STORAGES["digests"] at object storage with a retention lock (S3 Object Lock through django-storages).
POCARE_ANCHOR_KEY = Path(os.environ.get("POCARE_ANCHOR_KEY") or VAR_DIR / "anchor" / "ed25519.pem")
#: The keys that encrypt patients' identifying data (PAT-PRIVACY): a JSON file outside the database,
#: ``{"keys": [{"id": ..., "key": <Fernet key>}, ...]}``, the first encrypting, all decrypting (rotation).
#: Made on first use outside production; required in production (docs/patients.md, "Privacy").
POCARE_PATIENT_KEYS = Path(os.environ.get("POCARE_PATIENT_KEYS") or VAR_DIR / "patient-keys" / "keys.json")
POCARE_ANCHOR_TRUSTED_KEYS = [
    Path(p.strip()) for p in os.environ.get("POCARE_ANCHOR_TRUSTED_KEYS", "").split(",") if p.strip()
] or [POCARE_ANCHOR_KEY.with_name(POCARE_ANCHOR_KEY.name + ".pub")]
STORAGES["digests"] = {
    "BACKEND": "pocare.ledger.anchoring.DigestDirectoryStorage",
    "OPTIONS": {"location": os.environ.get("POCARE_DIGEST_DIR") or str(VAR_DIR / "digests")},
}

# --- Jobs (docs/jobs.md) -------------------------------------------------------------------------------
# A failed try waits BACKOFF × 2^(tries − 1) seconds (capped) before the next; a running job whose
# worker has not renewed its lease for LEASE seconds is taken back (failed, retried). WORKER_SEEN is
# how recent a worker's announcement must be for the health check to count a worker as alive.
POCARE_JOBS_BACKOFF_SECONDS = float(os.environ.get("POCARE_JOBS_BACKOFF_SECONDS", "10"))
POCARE_JOBS_BACKOFF_CAP_SECONDS = float(os.environ.get("POCARE_JOBS_BACKOFF_CAP_SECONDS", "3600"))
POCARE_JOBS_LEASE_SECONDS = float(os.environ.get("POCARE_JOBS_LEASE_SECONDS", "30"))
POCARE_JOBS_WORKER_SEEN_SECONDS = float(os.environ.get("POCARE_JOBS_WORKER_SEEN_SECONDS", "60"))
# "0": workers run queued jobs only, and no worker of this installation queues the periodic schedule.
POCARE_JOBS_SCHEDULE = os.environ.get("POCARE_JOBS_SCHEDULE", "1") != "0"
# --- end jobs ------------------------------------------------------------------------------------------

# Request size, set deliberately (pocare.core.bounds): a form or JSON body up to 2.5 MiB (the largest
# legitimate one is a 400 KB master-file document), at most 1,000 fields and 20 files; an uploaded
# file above 2.5 MiB is streamed to a temporary file, not held in memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = 20
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

EMAIL_BACKEND = os.environ.get("POCARE_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("POCARE_FROM_EMAIL", "pocare@localhost")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "pocare.accounts.api_auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["pocare.accounts.api_auth.RequiresPerm"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "pocare.core.api.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "pocare.core.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # JSON within bounds: body size, depth 32, numbers of at most 30 digits, no NUL or lone surrogates.
    "DEFAULT_PARSER_CLASSES": [
        "pocare.core.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "URL_FORMAT_OVERRIDE": None,  # `format` is the export parameter, not a renderer switch
}
SPECTACULAR_SETTINGS = {
    "TITLE": "POCare API",
    "DESCRIPTION": "Quality system of a point-of-care manufacturing network. Authenticate with a "
    "session (browser) or `Authorization: Bearer <token>` (devices, hospital systems).",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    # One schema name per choice set, where several apps have fields called kind/status/class.
    "ENUM_NAME_OVERRIDES": {
        "DeviationKindEnum": "pocare.quality.models.DeviationKind",
        "DeviationStatusEnum": "pocare.quality.models.DeviationStatus",
        "DeviationClassEnum": "pocare.quality.models.DeviationClass",
        "SignalStatusEnum": "pocare.quality.models.SignalStatus",
        "SignalOutcomeEnum": "pocare.quality.models.SignalOutcome",
        "CapaKindEnum": "pocare.quality.models.CapaKind",
        "ImpactEnum": "pocare.quality.models.Impact",
    },
}

# --- Several servers, monitoring, logs (docs/operations.md) -------------------------------------------
# Nothing that one server holds in its memory or on its disk may matter to another: sessions live in
# the database (said here, though it is Django's default, because the servers rely on it), the cache
# is shared (the database's, or Redis), files go through STORAGES["default"] (a directory, shared
# between the servers on a network file system, or S3-compatible object storage).
SESSION_ENGINE = "django.contrib.sessions.backends.db"

POCARE_CACHE_URL = os.environ.get("POCARE_CACHE_URL", "").strip()
if not POCARE_CACHE_URL:
    # Shared by every process on every machine that reaches the database; `pocare migrate` makes its table.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "pocare_cache"}}
elif POCARE_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": POCARE_CACHE_URL,
                          "KEY_PREFIX": "pocare"}}
else:  # the URL is not echoed: it may hold a password
    raise ImproperlyConfigured("POCARE_CACHE_URL must start with redis://, rediss:// or unix:// "
                               "(or be unset for the database cache)")

POCARE_STORAGE = os.environ.get("POCARE_STORAGE", "directory").strip()
if POCARE_STORAGE == "directory":
    STORAGES["default"] = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                           "OPTIONS": {"location": os.environ.get("POCARE_FILES_DIR") or str(VAR_DIR / "files"),
                                       "file_permissions_mode": 0o640, "directory_permissions_mode": 0o750}}
elif POCARE_STORAGE == "s3":
    if not os.environ.get("POCARE_S3_BUCKET"):
        raise ImproperlyConfigured("POCARE_STORAGE=s3 needs POCARE_S3_BUCKET (docs/operations.md)")
    # django-storages with boto3; the credentials come from boto3's own chain (AWS_ACCESS_KEY_ID and
    # AWS_SECRET_ACCESS_KEY, a profile, an instance role), never from POCare's settings.
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": os.environ["POCARE_S3_BUCKET"],
        "endpoint_url": os.environ.get("POCARE_S3_ENDPOINT_URL") or None,  # MinIO, Ceph, a hospital's own
        "region_name": os.environ.get("POCARE_S3_REGION") or None,
        "location": os.environ.get("POCARE_S3_PREFIX", "files"),
        "file_overwrite": False,  # a second file of one name gets a new name, as on a directory
        "default_acl": None,  # the bucket's policy decides: private
        "querystring_auth": True,
        "addressing_style": os.environ.get("POCARE_S3_ADDRESSING_STYLE") or None,
    }}
else:
    raise ImproperlyConfigured("POCARE_STORAGE must be 'directory' (default) or 's3'")

# /health/ gives anyone its status alone; the checks' detail and /metrics need the token (Bearer) or
# a call from one of the addresses (comma-separated addresses or networks, e.g. 10.0.5.0/24).
POCARE_MONITOR_TOKEN = os.environ.get("POCARE_MONITOR_TOKEN", "").strip()
if POCARE_MONITOR_TOKEN and len(POCARE_MONITOR_TOKEN) < 32:
    raise ImproperlyConfigured("POCARE_MONITOR_TOKEN must be at least 32 characters (e.g. `openssl rand -hex 32`)")


def _networks(value: str) -> list[Any]:
    networks = []
    for item in (v.strip() for v in value.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ImproperlyConfigured(f"POCARE_MONITOR_ADDRESSES: {item[:60]!r} is not an address or "
                                           "network (e.g. 10.0.5.7 or 10.0.5.0/24)") from None
    return networks


POCARE_MONITOR_NETWORKS = _networks(os.environ.get("POCARE_MONITOR_ADDRESSES", ""))
# The health check fails when the latest signed digest is older than this (anchoring runs hourly).
try:
    POCARE_ANCHOR_MAX_AGE_MINUTES = int(os.environ.get("POCARE_ANCHOR_MAX_AGE_MINUTES", "150"))
except ValueError:
    POCARE_ANCHOR_MAX_AGE_MINUTES = 0
if POCARE_ANCHOR_MAX_AGE_MINUTES < 1:
    raise ImproperlyConfigured("POCARE_ANCHOR_MAX_AGE_MINUTES must be a whole number of minutes, 1 or more")

# Logs: JSON lines on standard error in production (`text`, the default elsewhere, for people at a
# terminal: the demo, development), each with the request's id, person and site scope; one line per
# request on `pocare.requests` (route, method, status, duration).
POCARE_LOG_FORMAT = os.environ.get("POCARE_LOG_FORMAT", "json" if PRODUCTION else "text")
if POCARE_LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured("POCARE_LOG_FORMAT must be 'json' or 'text'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "pocare.ops.logs.RequestContextFilter"}},
    "formatters": {
        "json": {"()": "pocare.ops.logs.JsonLineFormatter",
                 "fmt": "%(levelname)s %(name)s %(message)s", "timestamp": "time",  # UTC, ISO 8601
                 "rename_fields": {"levelname": "level", "name": "logger"}},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s [%(request_id)s %(user)s]"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": POCARE_LOG_FORMAT,
                             "filters": ["request"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("POCARE_LOG_LEVEL", "WARNING")},
    "loggers": {"pocare.requests": {"handlers": ["console"], "propagate": False,
                                    "level": os.environ.get("POCARE_REQUEST_LOG_LEVEL", "INFO")}},
}
# --- end of several servers, monitoring, logs -----------------------------------------------------------

# The TLS-terminating proxy in front of `pocare serve` (an address, e.g. 127.0.0.1). Only its
# X-Forwarded-Proto and X-Forwarded-For are believed: waitress strips them from anyone else, and
# Django reads the protocol from the header only when a proxy is named. Without it, production
# answers every request forwarded over plain HTTP with a redirect to https (`check --deploy` says so).
POCARE_TRUSTED_PROXY = os.environ.get("POCARE_TRUSTED_PROXY", "").strip()
if POCARE_TRUSTED_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

if PRODUCTION:
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Headers on every response, in every mode (the demo included). The policy allows no inline script:
# page behaviour lives in static files (web/static/web/pocare.js) and templates use data- attributes.
# Inline *styles* stay allowed: progress bars and SVG charts carry data-dependent sizes in style
# attributes, several pages and printouts have a <style> block, and htmx adds its indicator style;
# a style cannot run script, and script is what the policy is for.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}
#: Browser features POCare never uses, switched off for its pages (pocare.web.middleware).
POCARE_PERMISSIONS_POLICY = ("camera=(), microphone=(), geolocation=(), payment=(), usb=(), midi=(), "
                             "magnetometer=(), gyroscope=(), accelerometer=(), display-capture=()")
# Kept apart from the list above so that the two edit in separate places: appended, these run first
# on the way out, so every response (error pages too) carries them.
MIDDLEWARE += ["csp.middleware.CSPMiddleware", "pocare.web.middleware.PermissionsPolicyMiddleware"]
