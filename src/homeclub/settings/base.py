"""Settings shared by every environment, read from environment variables.

The defaults run the embedded demo: SQLite under ``var/``, the database task backend,
email written to files under ``var/mail``. Production (``homeclub.settings.production``)
overrides what must not have a default.
"""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parents[3]
SRC_DIR = BASE_DIR / "src" / "homeclub"

env = environ.Env()

VAR_DIR = Path(env("HOMECLUB_VAR_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env("SECRET_KEY", default="homeclub-demo-only-not-secret-3f9a1c7e5b2d4860")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "homeclub.common",
    "homeclub.org",
    "homeclub.customers",
    "homeclub.messaging",
    "homeclub.points",
    "homeclub.club",
    "homeclub.rewards",
    "homeclub.sales",
    "homeclub.channels",
    "homeclub.inventory",
    "homeclub.api",
    "homeclub.console",
    "homeclub.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "homeclub.common.middleware.RequestContextMiddleware",
    "homeclub.api.middleware.ApiErrorFormatMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "homeclub.api.middleware.IdempotencyMiddleware",
    "homeclub.console.middleware.DomainErrorMiddleware",
    # axes must be last: it turns a lockout signal into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "homeclub.urls"
WSGI_APPLICATION = "homeclub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [SRC_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "homeclub.console.context.navigation",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
# An empty DATABASE_URL means "not set": the embedded SQLite database.
DATABASE_URL = env("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'homeclub.sqlite3'}"
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at
    # BEGIN so two writers queue instead of failing on lock upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    # JIT compiling pays off for long analytic queries, not for a web app's short ones:
    # on the 1M-customer list it spent ~300 ms of a 500 ms query compiling.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    # Django's cursors bind parameters client-side and are never prepared; a threshold
    # (instead of Django's None) lets the few hot reads that ask for it with psycopg's
    # ``prepare=True`` be planned once per connection (``customers.selectors``' phone
    # lookup). PG_PREPARE=false turns it off behind a transaction-pooling pgbouncer < 1.21.
    if env.bool("PG_PREPARE", default=True):
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 1_000_000_000)
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth -------------------------------------------------------------------------------
AUTH_USER_MODEL = "org.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "console:login"

# Lock a username out after repeated failures (django-axes).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# Per account, not per IP: a whole sales office shares one NAT address, and one clumsy
# colleague must not lock everyone out (hence axes.W006 is silenced below).
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_LOCKOUT_TEMPLATE = "console/locked.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# --- i18n / time ------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [SRC_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- static -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [
    SRC_DIR / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/echarts", BASE_DIR / "node_modules" / "echarts" / "dist"),
    ("vendor/bootstrap", BASE_DIR / "node_modules" / "bootstrap" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The demo and development serve straight from the source folders and node_modules;
# production collects hashed, compressed copies (settings/production.py).
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"

# --- cache, tasks -----------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

TASKS_BACKEND = env("HOMECLUB_TASKS", default="rq" if REDIS_URL else "db")
if TASKS_BACKEND == "rq":
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    RQ_QUEUES = {
        "default": {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 600}
    }
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
elif TASKS_BACKEND == "immediate":
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --- email ------------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default=f"filemail://{VAR_DIR / 'mail'}"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="homeclub <noreply@homeclub.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- messaging --------------------------------------------------------------------------
HOMECLUB_SMS_BACKEND = env("SMS_BACKEND", default="file")  # console | file | http
HOMECLUB_SMS_URL = env("SMS_URL", default="")
HOMECLUB_SMS_API_KEY = env("SMS_API_KEY", default="")
HOMECLUB_WECHAT_BACKEND = env("WECHAT_BACKEND", default="file")  # console | file | http
HOMECLUB_WECHAT_URL = env("WECHAT_URL", default="")
HOMECLUB_WECHAT_API_KEY = env("WECHAT_API_KEY", default="")
HOMECLUB_SMS_TIMEOUT = env.float("SMS_TIMEOUT", default=5.0)
HOMECLUB_WECHAT_TIMEOUT = env.float("WECHAT_TIMEOUT", default=5.0)
HOMECLUB_MESSAGE_DIR = VAR_DIR / "messages"
HOMECLUB_QUIET_HOURS = (
    env.int("QUIET_HOURS_START", default=21),
    env.int("QUIET_HOURS_END", default=8),
)

# --- online opening ---------------------------------------------------------------------
INVENTORY_PICK_MAX_INFLIGHT = env.int("INVENTORY_PICK_MAX_INFLIGHT", default=16)
INVENTORY_MAX_QUEUE_SECONDS = env.float("INVENTORY_MAX_QUEUE_SECONDS", default=5.0)

# --- sessions, security -----------------------------------------------------------------
SESSION_COOKIE_AGE = 60 * 60 * 12
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # 4xx answers are the client's business (a busy opening answers thousands of 409s);
    # 5xx still log as errors.
    "loggers": {"django.db.backends": {"level": "INFO"}, "django.request": {"level": "ERROR"}},
}
