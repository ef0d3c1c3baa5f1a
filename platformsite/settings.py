"""Settings for Micro Platform, read from the environment.

Embedded mode (the default) needs no servers: SQLite in WAL mode under ``var/``, a local-memory
cache, an in-memory channel layer and an in-process background worker.  Setting ``DATABASE_URL``
and ``REDIS_URL`` switches to the distributed mode (PostgreSQL, Redis cache, channels-redis and a
Redis Celery broker).  Every value is typed; a bad one raises ``ImproperlyConfigured`` naming
the variable.
"""

from __future__ import annotations

import secrets
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from platformsite.env import read, strict_bool

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
_read = read
_strict_bool = strict_bool


VAR_DIR = Path(_read("PLATFORM_VAR_DIR", env.str, str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

PLATFORM_ENV = _read("PLATFORM_ENV", env.str, "embedded")
if PLATFORM_ENV not in {"embedded", "production", "test"}:
    raise ImproperlyConfigured("PLATFORM_ENV must be one of: embedded, production, test")
PRODUCTION = PLATFORM_ENV == "production"

DEBUG = _read("DEBUG", _strict_bool, False)


def _secret_key() -> str:
    key = _read("SECRET_KEY", env.str, "")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY is required when PLATFORM_ENV=production")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = _read(
    "ALLOWED_HOSTS", env.list, [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = _read("CSRF_TRUSTED_ORIGINS", env.list, [])

if PRODUCTION:
    problems = []
    if DEBUG:
        problems.append("DEBUG must be off")
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure"):
        problems.append("SECRET_KEY must be at least 50 random characters")
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS must list the platform's host names (no '*')")
    if problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(problems))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "channels",
    "platformsite",
    "auth_app",
    "config_app",
    "discovery_app",
    "event_app",
    "monitor_app",
    "router_app",
    "trace_app",
    "dbproxy_app",
]

# Kept short on purpose: every middleware costs on each API call (docs/benchmarks.md).  The
# session-side ones are Django's, subclassed to step aside for bearer-token API calls.
MIDDLEWARE = [
    "platformsite.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "platformsite.middleware.SessionMiddleware",
    "platformsite.middleware.CsrfViewMiddleware",
    "platformsite.middleware.AuthenticationMiddleware",
    "platformsite.middleware.MessageMiddleware",
    "platformsite.middleware.XFrameOptionsMiddleware",
]

# Django's deploy checks look for its own CSRF and X-Frame-Options middlewares by exact path;
# the platform's subclasses above are those middlewares (checked by platformsite.checks instead).
SILENCED_SYSTEM_CHECKS = ["security.W002", "security.W003"]

ROOT_URLCONF = "platformsite.urls"
WSGI_APPLICATION = "platformsite.wsgi.application"
ASGI_APPLICATION = "platformsite.asgi.application"

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
                "platformsite.web.navigation",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------

DATABASES = {
    "default": _read("DATABASE_URL", env.db_url, f"sqlite:///{VAR_DIR / 'platform.sqlite3'}"),
}
_db = DATABASES["default"]
if _db.get("ENGINE") not in {
    "django.db.backends.sqlite3",
    "django.db.backends.postgresql",
    "django.db.backends.postgresql_psycopg2",
}:
    raise ImproperlyConfigured("DATABASE_URL has an invalid value: use sqlite:///path or postgres://...")
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                "PRAGMA busy_timeout=20000;"
            ),
        }
    )
elif _db["ENGINE"] in {"django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"}:
    # Django's engine, whose pool replaces connections the server ended (platformsite.db).
    _db["ENGINE"] = "platformsite.db.postgresql"
    # A connect to a server that does not answer (hung, or a network that drops packets) gives up
    # after 3 s (as the probes of platformsite.db.postgresql), not libpq's 130 s, unless DATABASE_URL
    # says otherwise (?connect_timeout=N).
    _db.setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
    if _read("PLATFORM_DB_POOL", _strict_bool, True):
        # A psycopg pool per process: no new session per request, safe under ASGI and WSGI.
        _db["CONN_MAX_AGE"] = 0
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": _read("PLATFORM_DB_POOL_MIN", env.int, 2),
            "max_size": _read("PLATFORM_DB_POOL_MAX", env.int, 20),
            # How long a request waits for a connection (the database down or restarting, or the
            # pool exhausted) before it is answered 503 with Retry-After: shorter than clients'
            # usual 10 s timeouts, so that they see the 503 rather than a timeout of their own.
            "timeout": _read("PLATFORM_DB_POOL_TIMEOUT", env.float, 5.0),
        }
    else:
        _db["CONN_MAX_AGE"] = _read("CONN_MAX_AGE", env.int, 60)
        _db["CONN_HEALTH_CHECKS"] = True

#: Seconds the platform's database, once found unreachable by a request that waited the pool's whole
#: timeout, is answered 503 at once instead of waited for (platformsite.db.Breaker).
PLATFORM_DB_DOWN_SECONDS = _read("PLATFORM_DB_DOWN_SECONDS", env.float, 5.0)
#: Seconds a query may wait for its answer before the platform asks, with a connection of its own,
#: whether the database answers at all; when it does not (hung, or a network that drops packets),
#: the query is abandoned, answered 503, and the database treated as down (platformsite.db.Stalls).
#: A slow query on a database that answers is never abandoned.  0 turns the watch off.
PLATFORM_DB_STALL_SECONDS = _read("PLATFORM_DB_STALL_SECONDS", env.float, 5.0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, channel layer, background jobs --------------------------------------------------------

REDIS_URL = _read("REDIS_URL", env.str, "")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")

#: Seconds a command to Redis (the shared cache, the invalidation announcements, Celery publishes,
#: change notices to websocket watchers) may wait for its connection and its answer; once one has
#: waited that long, Redis is refused at once, as down, for PLATFORM_REDIS_DOWN_SECONDS
#: (platformsite.cache.Guard).
PLATFORM_REDIS_TIMEOUT = _read("PLATFORM_REDIS_TIMEOUT", env.float, 2.0)
PLATFORM_REDIS_DOWN_SECONDS = _read("PLATFORM_REDIS_DOWN_SECONDS", env.float, 5.0)
if PLATFORM_REDIS_TIMEOUT <= 0 or PLATFORM_REDIS_DOWN_SECONDS < 0:
    raise ImproperlyConfigured(
        "PLATFORM_REDIS_TIMEOUT must be a number of seconds above 0, PLATFORM_REDIS_DOWN_SECONDS at least 0"
    )

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "platformsite.cache.PlatformRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "platform",
            "TIMEOUT": 300,
            "OPTIONS": {
                "pool_class": "platformsite.cache.GuardedConnectionPool",
                "socket_timeout": PLATFORM_REDIS_TIMEOUT,
                "socket_connect_timeout": PLATFORM_REDIS_TIMEOUT,
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py's asyncio pool refuses a 101st concurrent command by default; a burst of
            # websocket subscriptions (group_add each) easily makes more.
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": _read("PLATFORM_REDIS_MAX_CONNECTIONS", env.int, 1000),
                        # No read timeout: a consumer waits for its next message in BZPOPMIN,
                        # 5 s at a time, and redis-py's default read timeout (also 5 s) gave up
                        # at that moment, closing every websocket idle for 5 s. Nor a write
                        # timeout: redis-py writes through asyncio.wait_for then, which on
                        # Python 3.11 loses a cancellation arriving as the write completes,
                        # so a consumer that ended kept waiting for a message that never came.
                        # A network that drops the connection is still noticed: redis-py's TCP
                        # keepalive (30 s idle, 3 probes 5 s apart) breaks it. (A hung Redis
                        # process is not, its kernel answers the probes: consumers join groups
                        # through ServiceConsumer.join, which gives up after
                        # PLATFORM_REDIS_TIMEOUT.)
                        "socket_timeout": None,
                    }
                ],
                "prefix": "platform:channels",
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "platform",
            "TIMEOUT": 300,
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# How background jobs run: "celery" (a Redis broker, separate worker and beat processes),
# "thread" (the embedded mode's in-process worker and scheduler running the same tasks on the
# same schedule) or "eager" (run inline after commit; the test suite).
PLATFORM_TASK_MODE = _read("PLATFORM_TASK_MODE", env.str, "celery" if REDIS_URL else "thread")
if PLATFORM_TASK_MODE not in {"celery", "thread", "eager"}:
    raise ImproperlyConfigured("PLATFORM_TASK_MODE must be one of: celery, thread, eager")
if PLATFORM_TASK_MODE == "celery" and not REDIS_URL:
    raise ImproperlyConfigured("PLATFORM_TASK_MODE=celery needs REDIS_URL for the broker")

CELERY_BROKER_URL = REDIS_URL or "memory://"
# A command to a broker that stopped answering gives up after PLATFORM_REDIS_TIMEOUT (kombu waits
# forever by default), and a publish is tried once more, not three times: a request that enqueues
# work must not hang on the broker.  (Workers wait for tasks in BRPOP, 1 s at a time.)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_timeout": PLATFORM_REDIS_TIMEOUT,
    "socket_connect_timeout": PLATFORM_REDIS_TIMEOUT,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = PLATFORM_TASK_MODE == "eager"
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fix-up closes every database connection before and after each task, and in a
# prefork worker closes the connection pool too: a new pool (and new PostgreSQL sessions) per
# task. With this it never does; platformsite.celery returns the task's connection to the
# process's pool after each task instead, as a web request does.
CELERY_DB_REUSE_MAX = float("inf")
CELERY_BEAT_SCHEDULE: dict = {}  # each service adds its own entries (see the end of this file)

# --- Auth -----------------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if PLATFORM_ENV == "test":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "ui:login"
LOGIN_REDIRECT_URL = "ui:index"
LOGOUT_REDIRECT_URL = "ui:login"

# The scopes a token may hold come from the services' declarations (platformsite.services).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"  # noqa: S105
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"  # noqa: S105
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"  # noqa: S105
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER = {
    "DEFAULT_SCOPES": [],
    "SCOPES_BACKEND_CLASS": "auth_app.scopes.AccountScopes",
    "OAUTH2_VALIDATOR_CLASS": "auth_app.oauth.PlatformOAuth2Validator",
    "OAUTH2_SERVER_CLASS": "auth_app.oauth.PlatformServer",
    "ACCESS_TOKEN_EXPIRE_SECONDS": _read("PLATFORM_ACCESS_TOKEN_SECONDS", env.int, 3600),
    "REFRESH_TOKEN_EXPIRE_SECONDS": _read("PLATFORM_REFRESH_TOKEN_SECONDS", env.int, 30 * 24 * 3600),
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": not _read("PLATFORM_ALLOW_PASSWORD_GRANT", _strict_bool, False),
    "ACCESS_TOKEN_GENERATOR": "auth_app.keys.generate_access_token",
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
    "CLEAR_EXPIRED_TOKENS_BATCH_SIZE": 5000,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"] if PRODUCTION else ["http", "https"],
}

#: With no rule of an account's roles for a service, does the scope alone allow access?
PLATFORM_POLICY_SCOPE_SUFFICES = _read("PLATFORM_POLICY_SCOPE_SUFFICES", _strict_bool, True)
#: The resource owner password grant is off unless an operator turns it on (RFC 9700 2.4).
PLATFORM_ALLOW_PASSWORD_GRANT = _read("PLATFORM_ALLOW_PASSWORD_GRANT", _strict_bool, False)
#: Access tokens are JWTs (RFC 9068) that services can verify offline, or opaque random strings.
PLATFORM_ACCESS_TOKEN_FORMAT = _read("PLATFORM_ACCESS_TOKEN_FORMAT", env.str, "jwt")
if PLATFORM_ACCESS_TOKEN_FORMAT not in {"jwt", "opaque"}:
    raise ImproperlyConfigured("PLATFORM_ACCESS_TOKEN_FORMAT must be jwt or opaque")
#: The ``iss`` of JWT access tokens; by default the /o/ URL of the request that asked for one.
PLATFORM_ISSUER = _read("PLATFORM_ISSUER", env.str, "")
if PLATFORM_ISSUER:  # the `iss` of authorization responses (RFC 9207) is the metadata's issuer too
    OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] = PLATFORM_ISSUER
#: The ``aud`` of JWT access tokens.
PLATFORM_TOKEN_AUDIENCE = _read("PLATFORM_TOKEN_AUDIENCE", env.str, "micro-platform")
#: Days a signing key signs before beat rotates it; retired keys stay published for verification.
PLATFORM_SIGNING_KEY_DAYS = _read("PLATFORM_SIGNING_KEY_DAYS", env.int, 30)
#: Failed client authentications per IP (and per client id) in 5 minutes before /o/token/ answers 429.
PLATFORM_TOKEN_FAILURE_LIMIT = _read("PLATFORM_TOKEN_FAILURE_LIMIT", env.int, 20)

#: Seconds a validated bearer token is trusted from process memory before it is looked up again.
#: Revocation reaches every process sooner: see PLATFORM_REVOCATION_POLL_SECONDS.
PLATFORM_TOKEN_CACHE_SECONDS = _read("PLATFORM_TOKEN_CACHE_SECONDS", env.float, 30.0)
#: How often (at most) each process asks the shared cache whether a token was revoked since.
PLATFORM_REVOCATION_POLL_SECONDS = _read("PLATFORM_REVOCATION_POLL_SECONDS", env.float, 1.0)
#: Answer warm config reads, service lookups and heartbeats beneath Django's request stack
#: (platformsite.hotpath, the WSGI workers); anything else, and every refusal, goes through Django.
PLATFORM_HOT_PATH = _read("PLATFORM_HOT_PATH", _strict_bool, True)

# --- API ------------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "platformsite.api.authentication.BearerTokenAuthentication",
        "platformsite.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["platformsite.api.permissions.HasServiceScope"],
    "DEFAULT_RENDERER_CLASSES": ["platformsite.api.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["platformsite.api.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "platformsite.api.negotiation.JSONFirstNegotiation",
    "DEFAULT_PAGINATION_CLASS": "platformsite.api.pagination.CursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_THROTTLE_CLASSES": ["platformsite.api.throttling.ClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": _read("PLATFORM_THROTTLE_ANON", env.str, "60/min"),
        "client": _read("PLATFORM_THROTTLE_CLIENT", env.str, "100000/min"),
    },
    "EXCEPTION_HANDLER": "platformsite.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "platformsite.api.schema.PlatformAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
    # Reverse proxies in front that add X-Forwarded-For (their entries are trusted, from the right).
    # 0: the caller is REMOTE_ADDR. DRF's default (None) trusts the whole header, so a caller
    # named a new address, and had a new anonymous budget, with every request.
    "NUM_PROXIES": _read("PLATFORM_TRUSTED_PROXIES", env.int, 0),
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "Micro Platform API",
    "DESCRIPTION": "Auth, config, discovery, events, monitoring, routing, tracing and CRUD storage.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1/",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "ENUM_NAME_OVERRIDES": {
        "RuleActionEnum": ["read", "write", "*"],
        "CheckActionEnum": ["read", "write"],
        "ResultActionEnum": ["create", "update", "delete"],
    },
}

#: Whether /api/schema/ and /api/docs/ answer anyone; off in production: a signed-in dashboard user
#: or a valid bearer token only (platformsite.api.docs).
PLATFORM_API_DOCS_PUBLIC = _read("PLATFORM_API_DOCS_PUBLIC", _strict_bool, not PRODUCTION)

#: Whether webhooks (any URL a caller gives the platform to call) may target loopback, link-local
#: or private addresses; off: refused when written and when connecting (platformsite.outbound).
PLATFORM_ALLOW_PRIVATE_TARGETS = _read("PLATFORM_ALLOW_PRIVATE_TARGETS", _strict_bool, False)

#: Largest request body accepted, in bytes (413 beyond).  Ingest paths may allow more.
PLATFORM_MAX_BODY_BYTES = _read("PLATFORM_MAX_BODY_BYTES", env.int, 10 * 1024 * 1024)
PLATFORM_INGEST_MAX_BODY_BYTES = _read("PLATFORM_INGEST_MAX_BODY_BYTES", env.int, 50 * 1024 * 1024)
# The path prefixes allowed the ingest limit are declared by the services (``ingest_paths``).
DATA_UPLOAD_MAX_MEMORY_SIZE = max(PLATFORM_MAX_BODY_BYTES, PLATFORM_INGEST_MAX_BODY_BYTES)
#: Path prefixes whose errors are answered as JSON in the platform's error shape.
PLATFORM_API_PREFIXES = ("/api/", "/o/", "/v1/", "/ws/", "/metrics", "/healthz", "/readyz", "/ping/")

#: When true, /metrics needs a token with monitor:read; open by default for Prometheus scrapers.
PLATFORM_METRICS_REQUIRE_TOKEN = _read("PLATFORM_METRICS_REQUIRE_TOKEN", _strict_bool, False)

#: Set by ``manage.py runservice NAME``: serve that one service's API (plus health and metrics).
#: A name no service declares is refused at start-up (platformsite.services.served_services).
PLATFORM_SERVICE = _read("PLATFORM_SERVICE", env.str, "")
PLATFORM_SERVICE_WEB = _read("PLATFORM_SERVICE_WEB", _strict_bool, False)

# --- Static files, i18n ---------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
# Embedded (``platform run``, ``make run``) and DEBUG serve each static file as it is now, so an
# edited stylesheet is not sent with its start-up length (the browser drops it as truncated);
# production (and the tests) index the files once at start-up.
WHITENOISE_AUTOREFRESH = DEBUG or PLATFORM_ENV == "embedded"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security -------------------------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = _read("SECURE_SSL_REDIRECT", _strict_bool, True)
    SECURE_HSTS_SECONDS = _read("SECURE_HSTS_SECONDS", env.int, 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _read("SECURE_HSTS_INCLUDE_SUBDOMAINS", _strict_bool, True)
    SECURE_HSTS_PRELOAD = _read("SECURE_HSTS_PRELOAD", _strict_bool, True)
    if _read("PLATFORM_BEHIND_TLS_PROXY", _strict_bool, True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

# --- Logging: one JSON object per line, with request id and trace id ------------------------------

LOG_LEVEL = _read("LOG_LEVEL", env.str, "INFO").upper()
#: One ``platform.access`` line per request (method, path, status, ms): on in ``platform run``;
#: elsewhere off by default (a log line costs every request, and the WSGI server can write its own).
PLATFORM_ACCESS_LOG = _read("PLATFORM_ACCESS_LOG", _strict_bool, False)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "platformsite.logging.RequestContextFilter"}},
    "formatters": {"json": {"()": "platformsite.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "uvicorn.access": {"level": "WARNING"},
        "py.warnings": {"level": "WARNING"},  # Python's warnings (platformsite.apps routes them here)
        "platform.access": {"level": "INFO" if PLATFORM_ACCESS_LOG else "WARNING"},
    },
}

SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Each service's own settings ------------------------------------------------------------------
# A service keeps its settings in ``<app>/app_settings.py`` (upper-case names, read from the
# environment with platformsite.env); they become Django settings here.  Its periodic tasks are
# declared on its AppConfig (``beat_schedule``) and join CELERY_BEAT_SCHEDULE at start-up.
for _app in [name for name in INSTALLED_APPS if name.endswith("_app")]:
    if find_spec(f"{_app}.app_settings") is not None:
        _values = {k: v for k, v in vars(import_module(f"{_app}.app_settings")).items() if k.isupper()}
        globals().update(_values)
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
