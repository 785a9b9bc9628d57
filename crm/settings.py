"""Settings for the CRM, read from the environment (django-environ).

With no DATABASE_URL / REDIS_URL the project runs embedded: a SQLite file and kombu's
filesystem broker, so `make run` needs nothing installed. Production sets both.
"""

import urllib.parse
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
else:
    # No fallback: a production deploy without a secret must fail loudly.
    SECRET_KEY = env.str("SECRET_KEY")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # First: its runserver serves HTTP and websockets together (`make run`).
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_celery_beat",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "crm",
    "customers",
    "sales",
    "leads",
    "campaigns",
    "documents",
    "integrations",
    "analytics",
    "search",
    "api",
    "ai",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "crm.middleware.NulCharacterMiddleware",
    "crm.middleware.DomainErrorMiddleware",
    "crm.middleware.PrivatePagesMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Content-Security-Policy (django-csp): scripts only from our own static files (every
# asset is vendored, no inline script or handler: static/js/forms.js and the page scripts
# read data attributes); inline styles stay allowed for the style attributes of templates
# and the indicator styles htmx injects.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# The JSON API (api/, issue 18): knox device tokens first (a request without one answers
# 401 with WWW-Authenticate: Token), the browser's session second.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.auth.DeviceTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Cursor",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.PerTokenThrottle"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_VERSIONING_CLASS": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": True,
}
# Device tokens (django-rest-knox): stored as SHA-512 digests, one per device
# (api.models.DeviceToken), valid API_TOKEN_DAYS unless revoked sooner.
KNOX_TOKEN_MODEL = "api.DeviceToken"
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env.int("API_TOKEN_DAYS", default=90)),
    "TOKEN_PREFIX": "crm_",
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CRM API",
    "DESCRIPTION": (
        "The JSON API of the CRM for the mobile app and integrations. Authenticate with a "
        "device token (`Authorization: Token crm_...`, from POST /api/v1/auth/token/ or the "
        "Devices and API tokens page) or the browser session."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "DealStatusEnum": "sales.models.Sale.Status",
        "CampaignStatusEnum": "campaigns.models.EmailCampaign.Status",
    },
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.error_responses",
    ],
}
# Requests per device token (api.throttling); more answer 429 with Retry-After.
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="600/min")
# Idempotency-Key answers are kept this long: a phone retrying within it gets the same answer.
API_IDEMPOTENCY_HOURS = env.int("API_IDEMPOTENCY_HOURS", default=24)

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"
ASGI_APPLICATION = "crm.asgi.application"

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
                "crm.context_processors.role",
                "crm.context_processors.realtime",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL and immediate transactions avoid
    # "database is locked" when they write at the same time.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 20}
    )
    # The analytics covering indexes (INCLUDE columns) are PostgreSQL's; SQLite builds them
    # as plain indexes, which is all the embedded demo needs.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # Web requests (crm/wsgi.py sets it from WEB_STATEMENT_TIMEOUT_SECONDS) give up on a
    # statement that runs longer, so one runaway page answers an error instead of holding a
    # worker; workers and management commands have no such limit (tasks have time limits).
    STATEMENT_TIMEOUT_SECONDS = env.float("STATEMENT_TIMEOUT_SECONDS", default=0)
    # Short OLTP queries: PostgreSQL's JIT compiles for longer than it saves (measured on
    # the 100k customer list: 35-55 ms of compiling for a 30 ms count).
    server_options = ["-c jit=off"]
    if STATEMENT_TIMEOUT_SECONDS:
        server_options.append(f"-c statement_timeout={int(STATEMENT_TIMEOUT_SECONDS * 1000)}")
    # Options given in DATABASE_URL come last, so they win.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = " ".join([*server_options, options.get("options", "")]).strip()
    # Under ASGI (crm/asgi.py turns this on) each page's view runs in a thread of its own and
    # Django keeps a connection per thread: persistent ones piled up past PostgreSQL's
    # max_connections (web_load_50 on uvicorn workers: "too many clients" for a third of the
    # requests). A pool per process shares a bounded set instead.
    DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0)
    if DATABASE_POOL_MAX_SIZE:
        options["pool"] = {"min_size": 1, "max_size": DATABASE_POOL_MAX_SIZE, "timeout": 10}
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    else:
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(BASE_DIR / "var" / "cache"),
        }
    }

# Real time (crm.realtime, README "Notifications and the live board"): events go from the
# process that wrote them to every websocket through the channel layer, Redis when REDIS_URL
# is set. Without it the layer lives inside one process, so the web process's own events
# (board moves, edits) arrive at once and each socket also reads the event table every
# REALTIME_POLL_SECONDS for what the worker and beat processes wrote.
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's pool refuses (not waits) past its size, 100 by default: a wave
                # of sockets opening at once (a deploy, a network blip) joins its groups
                # together, a connection each. Its read timeout (5 s by default) must exceed
                # channels-redis's 5 s blocking pop, or a quiet socket's receive times out
                # on a busy machine and the consumer dies (measured: bench realtime_fanout).
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env.int("CHANNELS_REDIS_CONNECTIONS", default=1000),
                        "socket_timeout": 30,
                        "socket_connect_timeout": 5,
                    }
                ],
                "prefix": env.str("CHANNELS_PREFIX", default="crm"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REALTIME_POLL_SECONDS = env.float("REALTIME_POLL_SECONDS", default=0 if REDIS_URL else 2)
# Where pages open their websocket. Empty: a page served by the ASGI application (crm.asgi:
# `make run`, daphne) opens /ws/ on its own server, and a page served over WSGI none. In
# production pages are served by gunicorn's threads over WSGI (an ASGI server runs every
# sync view of a process on one thread) and the sockets by a separate ASGI service
# (docker-compose's `realtime`): set this to its address, `wss://host:port/ws/`, or `/ws/`
# when a proxy in front sends /ws/ there.
REALTIME_URL = env.str("REALTIME_URL", default="")
if REALTIME_URL.startswith(("ws://", "wss://")):
    # The service on another origin: CSP's 'self' covers a socket to the page's own origin.
    _realtime = urllib.parse.urlsplit(REALTIME_URL)
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["connect-src"] = [
        SELF,
        f"{_realtime.scheme}://{_realtime.netloc}",
    ]
# A reconnecting client is sent what it missed, at most this many events; beyond that (a
# laptop asleep for a day) it is told to reload. Events are kept REALTIME_EVENT_DAYS.
REALTIME_REPLAY_LIMIT = env.int("REALTIME_REPLAY_LIMIT", default=1000)
REALTIME_EVENT_DAYS = env.int("REALTIME_EVENT_DAYS", default=7)
# The hour (TIME_ZONE) the daily notification digest goes to those who chose it.
NOTIFICATION_DIGEST_HOUR = env.int("NOTIFICATION_DIGEST_HOUR", default=7)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sessions are read from the cache (Redis in production) and written through to the
# database, so a page view costs no session query.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Failed logins allowed per (username, client address) within the window before a lockout.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "media/"

# Tracking links and pixels in emails and on the website stay valid this long.
TRACKING_TOKEN_MAX_AGE_SECONDS = env.int("TRACKING_TOKEN_MAX_AGE_SECONDS", default=180 * 86400)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="CRM <crm@example.com>")
# Single emails (lead workflows, test sends) go through the default provider (SendGrid or
# Mailgun when configured, the local outbox at /campaigns/outbox/ otherwise).
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="campaigns.mail.CrmEmailBackend")

# Campaigns. No SENDGRID_API_KEY nor MAILGUN_API_KEY: every email goes to the local outbox.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
SENDGRID_API_KEY = env.str("SENDGRID_API_KEY", default="")
# Marketing email (campaigns, sequences) only to customers who granted consent; off: to anyone
# who has not withdrawn it. One-to-one sales email never needs it (customers.email_gate).
MARKETING_REQUIRES_CONSENT = env.bool("MARKETING_REQUIRES_CONSENT", default=True)
SENDGRID_API_HOST = env.str("SENDGRID_API_HOST", default="https://api.sendgrid.com")
SENDGRID_TIMEOUT_SECONDS = env.float("SENDGRID_TIMEOUT_SECONDS", default=10.0)
SENDGRID_WEBHOOK_PUBLIC_KEY = env.str("SENDGRID_WEBHOOK_PUBLIC_KEY", default="")
SENDGRID_WEBHOOK_MAX_AGE_SECONDS = env.int("SENDGRID_WEBHOOK_MAX_AGE_SECONDS", default=300)
# Mailgun (campaigns.sending.mailgun), beside or instead of SendGrid: configured when both the
# API key and the sending domain are set. The webhook signing key is Mailgun's "HTTP webhook
# signing key", not the API key. MAILGUN_API_URL overrides the region's host (tests' fake).
MAILGUN_API_KEY = env.str("MAILGUN_API_KEY", default="")
MAILGUN_DOMAIN = env.str("MAILGUN_DOMAIN", default="")
MAILGUN_REGION = env.str("MAILGUN_REGION", default="us")  # "us" or "eu"
MAILGUN_API_URL = env.str("MAILGUN_API_URL", default="")
MAILGUN_TIMEOUT_SECONDS = env.float("MAILGUN_TIMEOUT_SECONDS", default=10.0)
MAILGUN_WEBHOOK_SIGNING_KEY = env.str("MAILGUN_WEBHOOK_SIGNING_KEY", default="")
MAILGUN_WEBHOOK_MAX_AGE_SECONDS = env.int("MAILGUN_WEBHOOK_MAX_AGE_SECONDS", default=300)
# Which configured provider sends what names none (single emails always): "sendgrid",
# "mailgun" or "outbox"; empty: the first configured of SendGrid, Mailgun, the local outbox.
EMAIL_DEFAULT_PROVIDER = env.str("EMAIL_DEFAULT_PROVIDER", default="")
CAMPAIGN_BATCH_SIZE = env.int("CAMPAIGN_BATCH_SIZE", default=1000)  # SendGrid's and Mailgun's max
CAMPAIGN_SEND_LEASE_SECONDS = env.int("CAMPAIGN_SEND_LEASE_SECONDS", default=60)
CAMPAIGN_RETRY_BASE_SECONDS = env.float("CAMPAIGN_RETRY_BASE_SECONDS", default=2.0)
CAMPAIGN_MAX_RETRIES = env.int("CAMPAIGN_MAX_RETRIES", default=8)
# A batch whose worker died mid-request is judged (was it accepted?) only after this long:
# SendGrid's activity feed shows a message some minutes after it was accepted.
CAMPAIGN_INFLIGHT_SETTLE_SECONDS = env.int("CAMPAIGN_INFLIGHT_SETTLE_SECONDS", default=600)
UNSUBSCRIBE_TOKEN_MAX_AGE_SECONDS = env.int(
    "UNSUBSCRIBE_TOKEN_MAX_AGE_SECONDS", default=2 * 365 * 86400
)
DEFAULT_CURRENCY = env.str("DEFAULT_CURRENCY", default="USD")
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
DOCUMENT_MAX_BYTES = env.int("DOCUMENT_MAX_BYTES", default=25 * 1024 * 1024)
DOCUMENT_MAX_PDF_PAGES = env.int("DOCUMENT_MAX_PDF_PAGES", default=20_000)
DOCUMENT_SHARE_MAX_AGE_SECONDS = env.int("DOCUMENT_SHARE_MAX_AGE_SECONDS", default=14 * 86400)
# Uploads above this go to a temporary file instead of memory (a 25 MB PDF is not held in RAM).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Room for the row limit: a 50,000-row, 30-column CRM export is about 20 MB (the import
# streams the file, so memory does not grow with it).
CUSTOMER_IMPORT_MAX_BYTES = env.int("CUSTOMER_IMPORT_MAX_BYTES", default=64 * 1024 * 1024)
CUSTOMER_IMPORT_MAX_ROWS = env.int("CUSTOMER_IMPORT_MAX_ROWS", default=50_000)
# Dashboard blocks are fresh this long (and until a deal changes).
ANALYTICS_CACHE_SECONDS = env.int("ANALYTICS_CACHE_SECONDS", default=120)
# A dashboard older than that, or from before a deal change, is shown while a worker
# computes it again, at most once per ANALYTICS_REFRESH_SECONDS; one not seen for
# ANALYTICS_KEEP_SECONDS is computed on the request (analytics/dashboard.py).
ANALYTICS_REFRESH_SECONDS = env.int("ANALYTICS_REFRESH_SECONDS", default=30)
ANALYTICS_KEEP_SECONDS = env.int("ANALYTICS_KEEP_SECONDS", default=6 * 60 * 60)
# Global search: the language whose stemming applies to prose (notes, descriptions, document
# text) on PostgreSQL, one of pg_ts_config's (english, german, french, ...); names, emails and
# phone numbers are matched word for word whatever it is.
SEARCH_LANGUAGE = env.str("SEARCH_LANGUAGE", default="english")

# Duplicate customers (customers/duplicates, README "Duplicate customers"): pairs at or above
# DUPLICATE_MIN_CONFIDENCE are kept for review; at or above DUPLICATE_LIKELY_CONFIDENCE a new
# customer (form, import, API) is warned about; a block (a phone, a company and name start)
# shared by more customers than DUPLICATE_MAX_BLOCK is no evidence and is not compared. A
# merge can be undone for DUPLICATE_UNDO_DAYS.
DUPLICATE_MIN_CONFIDENCE = env.int("DUPLICATE_MIN_CONFIDENCE", default=50)
DUPLICATE_LIKELY_CONFIDENCE = env.int("DUPLICATE_LIKELY_CONFIDENCE", default=60)
DUPLICATE_MAX_BLOCK = env.int("DUPLICATE_MAX_BLOCK", default=100)
DUPLICATE_UNDO_DAYS = env.int("DUPLICATE_UNDO_DAYS", default=30)
DUPLICATE_BULK_MIN_CONFIDENCE = env.int("DUPLICATE_BULK_MIN_CONFIDENCE", default=90)

# AI lead scoring (ai/, README "AI lead scoring"): a lead is labelled once its window has
# passed or it converted; it is described as of its creation + AI_FEATURE_DAYS. No model
# below the data thresholds; a model is activated only when its held-out AUC beats the
# rule score's by AI_ACTIVATION_MARGIN and its Brier score is no worse.
AI_LABEL_WINDOW_DAYS = env.int("AI_LABEL_WINDOW_DAYS", default=180)
AI_FEATURE_DAYS = env.int("AI_FEATURE_DAYS", default=14)
AI_MIN_LABELLED = env.int("AI_MIN_LABELLED", default=200)
AI_MIN_CONVERSIONS = env.int("AI_MIN_CONVERSIONS", default=40)
AI_ACTIVATION_MARGIN = env.float("AI_ACTIVATION_MARGIN", default=0.02)
AI_TEST_FRACTION = env.float("AI_TEST_FRACTION", default=0.2)
AI_TREES = env.int("AI_TREES", default=100)
AI_N_JOBS = env.int("AI_N_JOBS", default=2)
AI_RECOMMEND_EXCLUDE_DAYS = env.int("AI_RECOMMEND_EXCLUDE_DAYS", default=30)

# Celery: Redis when REDIS_URL is set; otherwise kombu's filesystem transport, which is
# enough for a one-machine demo (it polls and loses in-flight tasks on kill -9).
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "crm-scheduler-heartbeat": {"task": "crm.scheduler_heartbeat", "schedule": 60.0},
    "campaigns-sequence-tick": {"task": "campaigns.sequence_tick", "schedule": 5 * 60.0},
    "campaigns-resume-stalled-sends": {
        "task": "campaigns.resume_stalled_runs",
        "schedule": 60.0,
    },
    # Connecting Mailgun imports its bounces, complaints and unsubscribes once per domain.
    "campaigns-mailgun-connect": {"task": "campaigns.mailgun_connect", "schedule": 10 * 60.0},
    "campaigns-refresh-segment-counts": {
        "task": "campaigns.refresh_segment_counts",
        "schedule": 30 * 60.0,
    },
    "sales-pipeline-nightly": {
        "task": "sales.pipeline_nightly",
        "schedule": crontab(hour=2, minute=45),
    },
    "ai-nightly-training": {
        "task": "ai.train_nightly",
        "schedule": crontab(hour=1, minute=30),
    },
    "ai-recommendation-statistics": {
        "task": "ai.refresh_recommendation_stats",
        "schedule": crontab(hour=1, minute=15),
    },
    "leads-nightly-rescore": {
        "task": "leads.rescore_all",
        "schedule": crontab(hour=2, minute=15),
    },
    "customers-duplicates-nightly-scan": {
        "task": "customers.duplicates_scan_nightly",
        "schedule": crontab(hour=0, minute=45),
    },
    "sales-forecast-statistics": {
        "task": "sales.forecast_statistics",
        "schedule": crontab(hour=3, minute=15),
    },
    # CRM sync: every enabled HubSpot/Salesforce connection, and runs whose worker died.
    "integrations-sync-all": {"task": "integrations.sync_all", "schedule": 5 * 60.0},
    "integrations-resume-stalled": {
        "task": "integrations.resume_stalled_runs",
        "schedule": 60.0,
    },
    # The search index is an unlogged table: rebuilt when a crash emptied it (search.models).
    "search-recover-index": {"task": "search.recover_index", "schedule": 5 * 60.0},
    "crm-realtime-prune": {
        "task": "crm.realtime_events_prune",
        "schedule": crontab(hour=4, minute=10),
    },
    "crm-notification-digest": {
        "task": "crm.notification_digests_send",
        "schedule": crontab(hour=NOTIFICATION_DIGEST_HOUR, minute=0),
    },
    "sales-forecast-snapshots": {
        "task": "sales.forecast_snapshots",
        "schedule": crontab(hour=3, minute=0, day_of_week=1),
    },
}
# CRM sync (integrations/, README "Syncing with HubSpot and Salesforce"). SYNC_SECRETS_KEY: Fernet
# key(s) for the connections' secrets, comma-separated for rotation (the first encrypts).
# HUBSPOT_API_URL / SALESFORCE_API_URL point the official clients elsewhere (tests' fakes).
SYNC_SECRETS_KEY = env.str("SYNC_SECRETS_KEY", default="")
HUBSPOT_API_URL = env.str("HUBSPOT_API_URL", default="https://api.hubapi.com")
SALESFORCE_API_URL = env.str("SALESFORCE_API_URL", default="")
SYNC_TIMEOUT_SECONDS = env.float("SYNC_TIMEOUT_SECONDS", default=30.0)
SYNC_RETRY_BASE_SECONDS = env.float("SYNC_RETRY_BASE_SECONDS", default=1.0)
SYNC_MAX_RETRIES = env.int("SYNC_MAX_RETRIES", default=6)
# A record modified this close to "now" waits for the next run: HubSpot's search index and
# Salesforce's SystemModstamp settle a few seconds after the write.
SYNC_SETTLE_SECONDS = env.float("SYNC_SETTLE_SECONDS", default=15.0)
SYNC_LEASE_SECONDS = env.int("SYNC_LEASE_SECONDS", default=120)

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    # Tasks are acknowledged late, so a task whose worker dies stays "unacked" in Redis and
    # is handed out again once this timeout passes (Redis's default is an hour). Every
    # worker sweeps for such tasks every 10 s. A task still running after the timeout is
    # delivered a second time, which every task here tolerates: campaign and sequence sends
    # hold a lease, imports and workflow runs are claimed once, the nightly jobs recompute
    # the same result.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=240),
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }
else:
    CELERY_FOLDER = BASE_DIR / "var" / "celery"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_FOLDER / "queue"),
        "data_folder_out": str(CELERY_FOLDER / "queue"),
        "control_folder": str(CELERY_FOLDER / "control"),
        "processed_folder": str(CELERY_FOLDER / "processed"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    if BEHIND_TLS_PROXY:
        # Only behind a proxy that sets this header itself; otherwise clients could forge it.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
    # HTTPS only: on by default behind the TLS proxy, which is how production runs; plain
    # HTTP (docker compose on localhost) keeps them off unless asked.
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=BEHIND_TLS_PROXY)
    SECURE_HSTS_SECONDS = env.int(
        "SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if BEHIND_TLS_PROXY else 0
    )
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
        "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=bool(SECURE_HSTS_SECONDS)
    )
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a site owner's commitment to browsers' lists, not a default.
        SILENCED_SYSTEM_CHECKS = [*globals().get("SILENCED_SYSTEM_CHECKS", []), "security.W021"]
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "format": "time=%(asctime)s level=%(levelname)s logger=%(name)s message=%(message)s"
        }
    },
    "filters": {"client_errors": {"()": "crm.logfilters.ClientErrorsWithoutTraceback"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "structured",
            "filters": ["client_errors"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's default config gives "django" its own console handler on top of the
        # propagation to root, which printed every 403/404 twice; clear it (and its INFO
        # level) so each record goes once through the root handler, in the structured format.
        "django": {"handlers": [], "level": "NOTSET", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
    },
}
