"""Settings shared by every environment; on their own they are the development settings.

Every value comes from the environment (see `.env.example`). With DATABASE_URL or REDIS_URL
unset, the embedded servers under ./var are started or attached to (config/embedded).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from config.redis_urls import celery_redis_url
from config.settings.env import BASE_DIR, VAR_DIR, env


def _development_secret_key() -> str:
    """A random key made once per checkout and kept in ./var, so sessions survive restarts."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _database_url() -> str:
    url = env.str("DATABASE_URL", default="")
    if url:
        return url
    from config.embedded import embedded_postgres_url

    return embedded_postgres_url(VAR_DIR)


def _redis_url() -> str:
    url = env.str("REDIS_URL", default="")
    if url:
        return url
    from config.embedded import embedded_redis_url

    return embedded_redis_url(VAR_DIR)


def redis_backed_settings(url: str) -> dict[str, Any]:
    """Everything that lives in Redis, from one URL: cache, channel layer, Celery.

    Every pool is made with `driver_info=None`: otherwise redis-py 8 reads its own package
    metadata from disk (importlib.metadata) and sends two CLIENT SETINFO commands for every
    new connection, about a millisecond of CPU each, and pools open connections all the time
    (a blocking read that is cancelled leaves its connection closed)."""
    return {
        "REDIS_URL": url,
        "CACHES": {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": "arbor",
                "OPTIONS": {
                    "SOCKET_CONNECT_TIMEOUT": 3,
                    "SOCKET_TIMEOUT": 3,
                    "CONNECTION_POOL_KWARGS": {"driver_info": None},  # see the docstring
                },
            }
        },
        "CHANNEL_LAYERS": {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                # No socket timeout: the layer's blocking pops wait 5 s, exactly redis-py 8's
                # default read timeout, which would otherwise end an idle tab's consumer. And
                # room for every open socket: each one's group joins and pops use the pool.
                "CONFIG": {
                    "hosts": [{"address": url, "socket_timeout": None, "max_connections": 5_000, "driver_info": None}],
                    "prefix": "arbor:channels",
                },
            }
        },
        "CELERY_BROKER_URL": celery_redis_url(url),
        "CELERY_RESULT_BACKEND": celery_redis_url(url),
    }


DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="") or _development_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # daphne first: its runserver serves WebSockets too.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "django_ltree",
    # The JSON API (config.api); its docs page's scripts and styles are served from here, not a CDN.
    "ninja",
    "config.apps.ArborConfig",
    "accounts",
    "providers",
    "chat",
    "artifacts",
    "usage",
    "web",
    "gateway",
]

MIDDLEWARE = [
    "config.middleware.HealthProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "web.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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

DATABASE_URL = _database_url()
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
# A connection pool shared by every thread of a process: the ASGI process runs its database work
# in a thread pool, and opening a PostgreSQL connection per call (a server process forked each
# time) cost more than the queries of a chat turn. Django refuses CONN_MAX_AGE with a pool.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
if env.bool("DATABASE_POOL", default=True):
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=1),
        "max_size": env.int("DATABASE_POOL_MAX", default=20),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
# A chat is titled by a Celery task after its first complete reply.
CHAT_TITLES_AUTO = env.bool("CHAT_TITLES_AUTO", default=True)
# Seconds a reply's stream buffer (its frames in Redis) is kept after its last frame: a socket
# resumes from it, a second tab follows it (docs/protocol.md).
STREAM_BUFFER_TTL = env.int("STREAM_BUFFER_TTL", default=3600)
# The platform layer of every system prompt (`{date}` is today's date); set but empty: no platform
# layer. Unset, the setting stays undefined and chat.prompts uses its own default text (asked of
# os.environ, which `.env` fills too: django-environ reads an empty value as unset).
if "PLATFORM_SYSTEM_PROMPT" in os.environ:
    PLATFORM_SYSTEM_PROMPT = env.str("PLATFORM_SYSTEM_PROMPT")
# Threads a web process runs sockets' and generations' database work on (chat.generation). More
# threads overlap more round trips, but each holds the GIL for its ORM work, and the event loop
# that writes every token waits for the GIL behind all of them (see docs/benchmarks.md).
DATABASE_THREADS = env.int("DATABASE_THREADS", default=16)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

globals().update(redis_backed_settings(_redis_url()))

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Threads, not processes: a title or a review spends seconds waiting on a model, and a prefork
# child is held for all of that wait, so a burst of titles queued behind a few processes. Each
# thread holds a database connection while its task runs (Celery's Django fix-up closes it after
# every task): keep the concurrency below DATABASE_POOL_MAX. `make run` and a bare
# `celery -A config worker` (compose) both read these.
CELERY_WORKER_POOL = env.str("CELERY_WORKER_POOL", default="threads")
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=16)
# With Redis, a task taken by a worker that died before acknowledging it (tasks ack late) goes
# back to its queue this long after it was taken. Longer than any task runs (a title gives up
# after 30 s, a review after 120 s), or a slow task would be run a second time beside the first.
_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=300)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _VISIBILITY_TIMEOUT,
    # Workers look for such tasks every thirtieth of the timeout (10 s by default), one small
    # Redis read each; kombu's own period (100 s) would add a third to the wait.
    "unacked_restore_interval": max(1, _VISIBILITY_TIMEOUT // 30),
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Run by `celery -A config beat` (one beat process per deployment; docs/operations.md).
CELERY_BEAT_SCHEDULE = {
    "usage-rollup": {"task": "usage.rollup_recent", "schedule": 15 * 60},
    "usage-prune-ledger": {"task": "usage.prune_ledger", "schedule": 24 * 60 * 60},
}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "accounts:signin"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# A guest's data lives as long as their session cookie: keep it long.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 24 * 180)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Guests are created per client IP at most this fast (a token bucket: a burst, then a rate).
GUEST_CREATE_BURST = env.int("GUEST_CREATE_BURST", default=10)
GUEST_CREATE_PER_HOUR = env.int("GUEST_CREATE_PER_HOUR", default=20)
# Sign-in attempts per client IP (a token bucket), against password guessing.
SIGNIN_BURST = env.int("SIGNIN_BURST", default=10)
SIGNIN_PER_HOUR = env.int("SIGNIN_PER_HOUR", default=60)
# Proxies whose X-Forwarded-For is believed (addresses or CIDR ranges); empty: none.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production serves collected, hashed files (production.py); here files come from the apps.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # A share link's token is its credential: no log line shows one (config/logfilters.py).
    "filters": {"share_tokens": {"()": "config.logfilters.ShareTokenFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["share_tokens"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # One line per HTTP request from daphne is noise in development.
        "django.channels.server": {"level": "WARNING"},
    },
}

# --- Providers ---------------------------------------------------------------------------------
# Fernet keys for API keys at rest, newest first; unset: one derived from SECRET_KEY.
SECRET_ENCRYPTION_KEYS = env.list("SECRET_ENCRYPTION_KEYS", default=[])
# Seconds to connect, to wait for the first token, and to wait between tokens.
PROVIDER_CONNECT_TIMEOUT = env.float("PROVIDER_CONNECT_TIMEOUT", default=10.0)
PROVIDER_FIRST_TOKEN_TIMEOUT = env.float("PROVIDER_FIRST_TOKEN_TIMEOUT", default=60.0)
PROVIDER_IDLE_TIMEOUT = env.float("PROVIDER_IDLE_TIMEOUT", default=30.0)
# Retries of one provider before its first token (exponential backoff with jitter), then failover.
PROVIDER_MAX_RETRIES = env.int("PROVIDER_MAX_RETRIES", default=2)
PROVIDER_RETRY_BASE_DELAY = env.float("PROVIDER_RETRY_BASE_DELAY", default=0.5)
# A provider's circuit opens after this many failures in a row, for this many seconds.
PROVIDER_BREAKER_THRESHOLD = env.int("PROVIDER_BREAKER_THRESHOLD", default=5)
PROVIDER_BREAKER_OPEN_SECONDS = env.float("PROVIDER_BREAKER_OPEN_SECONDS", default=30.0)
# Let users' custom endpoints reach private and loopback addresses (self-hosters running
# Ollama beside Arbor). Off: such URLs are refused when saved and when used.
ALLOW_PRIVATE_PROVIDER_URLS = env.bool("ALLOW_PRIVATE_PROVIDER_URLS", default=False)
# The offline demo model: "auto" offers it while no real provider has a key; "on" or "off".
DEMO_MODEL = env.str("DEMO_MODEL", default="auto")
# Seconds between the demo model's words (a realistic pace; tests use 0).
DEMO_TOKEN_DELAY = env.float("DEMO_TOKEN_DELAY", default=0.03)

# `make run` serves here (with a Celery worker: CELERY_WORKER_POOL and CELERY_WORKER_CONCURRENCY).
ARBOR_HOST = env.str("ARBOR_HOST", default="127.0.0.1")
ARBOR_PORT = env.int("ARBOR_PORT", default=8000)
# Daphne processes `make run` (and the image) serve ARBOR_PORT from, all on one socket: a process
# runs one event loop, so uses one core. Empty counts as unset, so compose can pass
# `${WEB_PROCESSES:-}` through to every container.
WEB_PROCESSES = env.int("WEB_PROCESSES") if env.str("WEB_PROCESSES", default="") else (os.cpu_count() or 1)
# The largest request body a web process reads (config.daphne_server): past it the rest is thrown
# away unread by the application and the client gets 413, so a process holds at most this much
# of any one body. The default fits the largest upload, an image of 5 MB, with its multipart
# framing (chat.uploads_api); Django's own limits (DATA_UPLOAD_MAX_MEMORY_SIZE) apply below it.
REQUEST_BODY_MAX_BYTES = env.int("REQUEST_BODY_MAX_BYTES", default=5 * 1024 * 1024 + 64 * 1024)

# --- Reply limits (every reply, whatever its provider does) -------------------------------------
# Seconds from a model call's start to its first event, over every retry, backoff and failover:
# each attempt gets its share of what is left, split among the providers not yet tried.
FIRST_TOKEN_BUDGET_SECONDS = env.float("FIRST_TOKEN_BUDGET_SECONDS", default=60.0)
# A reply (all its model calls and tools) is cut after this many seconds: saved with its text as
# an error, `timeout`.
REPLY_MAX_SECONDS = env.float("REPLY_MAX_SECONDS", default=600.0)
# A reply is cut after this many characters of output (text, reasoning and tool arguments):
# saved with its text as complete, finish reason `length`. Output tokens are capped apart, by the
# model's max output sent with every call.
REPLY_MAX_CHARS = env.int("REPLY_MAX_CHARS", default=300_000)
