"""Settings for Batch Portal, read from the environment (see README, "Configuration")."""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from portal.mailers import mailer

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
# Production sets its own key; `check --deploy` flags this development default (security.W009).
SECRET_KEY = env.str(
    "SECRET_KEY", default="django-insecure-local-development-key-not-for-production"
)
# Fernet keys for the Isometric credentials stored in the database, newest first: a new key goes in
# front, `manage.py reencrypt_secrets` moves every secret onto it, then the old one can go.
# The README says how to generate one.
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEYS", default=[])
# Seconds to connect to Isometric, and to wait for its answer.
ISOMETRIC_TIMEOUT = (
    env.float("ISOMETRIC_CONNECT_TIMEOUT", default=3.05),
    env.float("ISOMETRIC_READ_TIMEOUT", default=10.0),
)
# Seconds a whole request to Isometric may take, and the largest answer read from it.
ISOMETRIC_DEADLINE = env.float("ISOMETRIC_DEADLINE", default=20.0)
ISOMETRIC_MAX_RESPONSE_BYTES = env.int("ISOMETRIC_MAX_RESPONSE_BYTES", default=5 * 1024 * 1024)
# Requests a second the sync workers may send for an account, all together, unless the account
# sets its own (0: no limit but Isometric's 429s); and the longest a request waits for its turn.
ISOMETRIC_RATE_LIMIT = env.float("ISOMETRIC_RATE_LIMIT", default=0)
ISOMETRIC_MAX_TURN_WAIT = env.float("ISOMETRIC_MAX_TURN_WAIT", default=10)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.forms",
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # Before portal, whose admin takes auditlog's log entry admin off the site.
    "auditlog",
    "portal",
    "batches",
    "notifications",
]

# Axes refuses a locked-out login before the model backend checks the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

MIDDLEWARE = [
    # First: the HTTPS redirect and secure cookies must not believe a spoofed scheme.
    "portal.proxies.TrustedProxyMiddleware",
    "portal.metrics.RequestTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Who must give a second factor is led to it from every page (portal/second_factor.py).
    "portal.second_factor.SecondFactorMiddleware",
    # Times in the user's own zone, if they chose one.
    "portal.time_zones.user_time_zone",
    # Every change it logs names the request's user.
    "auditlog.middleware.AuditlogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a refused login's response into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.isometric_accounts",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Opening a database connection for every request costs more than most pages' own queries: each
# is kept for a minute, and checked before it is reused.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A web process and the sync worker write at once: WAL lets readers run beside the writer,
    # IMMEDIATE takes the write lock at BEGIN (no deadlocked upgrades) and the timeout makes a
    # writer wait for the lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    }
else:
    # Forms iterate their choices with iterator(), which on PostgreSQL is a server-side cursor:
    # DECLARE, FETCH and CLOSE, three round trips for a handful of facilities. Client-side
    # cursors also keep the portal working behind a transaction-pooling PgBouncer.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True

# Widgets render with the project's templates, so the portal can give a widget its own.
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# The name authenticator apps show beside the portal's codes.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Batch Portal")
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): a user name is locked for a while, from the address that failed
# AXES_FAILURE_LIMIT times in a row; a success resets the count, an admin unlocks by deleting the
# access attempt. Each refused attempt starts the cool-off again.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_CALLABLE = "portal.lockout.locked_out"

# The history of batches and accounts (django-auditlog). Old and new values keep JSON's types, so
# a missing value reads as none rather than the text "None"; the entries of one operation share
# its id (batches.history.changes_via), so a batch's timeline shows them as one change.
AUDITLOG_STORE_JSON_CHANGES = True
AUDITLOG_CID_GETTER = "batches.history.operation_id"

LANGUAGE_CODE = "en-gb"
# Dates and times as the portal shows them (the admin included): 25 Oct 2006 14:30 UTC.
FORMAT_MODULE_PATH = ["portal.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# The proxies in front of the portal, by address or network (10.0.0.0/8): only their
# X-Forwarded-Proto is believed, by the portal and by gunicorn (gunicorn.conf.py). Empty: none.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
# Who may read /metrics (and a worker's --metrics-port): a scrape with this bearer token, or
# from these addresses or networks. Neither set: nobody.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_ADDRESSES = env.list("METRICS_ALLOWED_ADDRESSES", default=[])

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # The container's health probe and Prometheus's scrapes speak plain HTTP from inside; the rest
    # goes to HTTPS.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    # Believed only from TRUSTED_PROXIES (portal/proxies.py).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Error reports and DEBUG's error page leave the Isometric credentials out (see the module).
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.exception_filter.CredentialsFilter"

# "json": each log line a JSON object, with the fields of a request or a sync attempt.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f'LOG_FORMAT must be "plain" or "json", not {LOG_FORMAT!r}')
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# Units an operator may choose for a batch's mass; Isometric accepts any non-empty unit string.
BATCH_MASS_UNITS = env.list("BATCH_MASS_UNITS", default=["tonne", "kg"])
BATCH_PAGE_SIZE = env.int("BATCH_PAGE_SIZE", default=25)
# Values the batch form accepts only once the operator confirms them.
BATCH_MASS_CONFIRM_ABOVE = env.float("BATCH_MASS_CONFIRM_ABOVE", default=500.0)  # tonnes
BATCH_RUN_CONFIRM_DAYS = env.int("BATCH_RUN_CONFIRM_DAYS", default=3)
BATCH_EARLIEST_YEAR = env.int("BATCH_EARLIEST_YEAR", default=2020)
# The largest spreadsheet of batches an import reads, in bytes and in batches (its rows).
BATCH_IMPORT_MAX_BYTES = env.int("BATCH_IMPORT_MAX_BYTES", default=20 * 1024 * 1024)
BATCH_IMPORT_MAX_ROWS = env.int("BATCH_IMPORT_MAX_ROWS", default=50_000)

# The sync worker (batches.sync, `manage.py sync_worker`).
# A batch that has kept failing this long is given up on (marked failed, retried by hand).
SYNC_GIVE_UP_AFTER = env.float("SYNC_GIVE_UP_AFTER", default=3 * 24 * 3600.0)  # seconds
SYNC_BACKOFF_BASE = env.float("SYNC_BACKOFF_BASE", default=2.0)  # seconds, doubled per attempt
SYNC_BACKOFF_CAP = env.float("SYNC_BACKOFF_CAP", default=600.0)  # seconds
# How long a claimed batch is the worker's: longer than a push can take (timeouts included).
SYNC_LEASE = env.float("SYNC_LEASE", default=120.0)  # seconds
SYNC_POLL_INTERVAL = env.float("SYNC_POLL_INTERVAL", default=0.5)  # seconds, when idle
SYNC_PULL_INTERVAL = env.float("SYNC_PULL_INTERVAL", default=900.0)  # seconds
# Accounts a worker pulls at once: an account whose pull is slow holds up one of them only.
SYNC_PULL_CONCURRENCY = env.int("SYNC_PULL_CONCURRENCY", default=4)

# Email notifications, which the sync worker sends (notifications.services). EMAIL_URL is
# django-environ's: smtp+tls://user:password@smtp.example.com:587 and the like; development
# writes emails to the worker's output, production sends to a local mail server unless told.
MAILERS = {
    "default": mailer(
        env.str("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost"),
        timeout=env.float("EMAIL_TIMEOUT", default=10.0),  # seconds: a stuck server stops no loop
    )
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Batch Portal <batch-portal@localhost>")
# Where emails link to: the portal's address as its users reach it.
PORTAL_URL = env.str("PORTAL_URL", default="http://127.0.0.1:8000")
NOTIFICATIONS_INTERVAL = env.float("NOTIFICATIONS_INTERVAL", default=60.0)  # seconds
