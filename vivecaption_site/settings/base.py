"""Settings shared by every environment.

Every value comes from the environment (one `environ.Env()`), with an embedded default that
runs the product on one machine: SQLite and the Celery filesystem broker under `var/`.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

VAR_DIR = Path(env.str("VIVE_VAR_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "apps.core",
    "apps.accounts",
    "apps.projects",
    "apps.audit",
    "apps.jobs",
    "apps.media",
    "apps.curation",
    "apps.modelhub",
    "apps.captioning",
    "apps.labeling",
    "apps.training",
    "apps.evaluation",
    "apps.review",
    "apps.exports",
    "apps.pipeline",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.audit.context.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "vivecaption_site.urls"
WSGI_APPLICATION = "vivecaption_site.wsgi.application"

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
                "apps.core.context_processors.role",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web process share the file: wait for locks instead of failing at once. A
    # deferred transaction that reads and then writes cannot wait (SQLite answers "locked" at once
    # to avoid a deadlock), so transactions take the write lock when they begin. A lock held longer
    # than SQLITE_LOCK_TIMEOUT_SECONDS is an OperationalError, as a dropped server connection is.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": env.float("SQLITE_LOCK_TIMEOUT_SECONDS", default=30), "transaction_mode": "IMMEDIATE"}
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "projects:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Media is never served from a public URL: every file goes through a permission-checked view.
MEDIA_URL = "/media-files/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Uploads: refuse big bodies before they are read into memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("DATA_UPLOAD_MAX_NUMBER_FILES", default=500)
REFERENCE_IMAGE_MAX_BYTES = env.int("REFERENCE_IMAGE_MAX_BYTES", default=20 * 1024 * 1024)
REFERENCE_IMAGE_MAX_PIXELS = env.int("REFERENCE_IMAGE_MAX_PIXELS", default=40_000_000)

# Ingestion (images, zip archives, videos). Requests over INGEST_MAX_REQUEST_BYTES are refused
# from their Content-Length, before the body is read; uploads stream to disk, never to memory.
INGEST_MAX_REQUEST_BYTES = env.int("INGEST_MAX_REQUEST_BYTES", default=8 * 1024**3)
INGEST_MAX_FILE_BYTES = env.int("INGEST_MAX_FILE_BYTES", default=4 * 1024**3)
INGEST_MAX_IMAGE_BYTES = env.int("INGEST_MAX_IMAGE_BYTES", default=60 * 1024 * 1024)
INGEST_MAX_IMAGE_PIXELS = env.int("INGEST_MAX_IMAGE_PIXELS", default=80_000_000)
INGEST_JPEG_QUALITY = env.int("INGEST_JPEG_QUALITY", default=90)
INGEST_THUMBNAIL_SIDE = env.int("INGEST_THUMBNAIL_SIDE", default=256)
INGEST_DECODE_TIMEOUT_SECONDS = env.float("INGEST_DECODE_TIMEOUT_SECONDS", default=3600.0)
INGEST_MAX_VIDEO_SECONDS = env.float("INGEST_MAX_VIDEO_SECONDS", default=6 * 3600.0)
INGEST_PROBE_TIMEOUT_SECONDS = env.float("INGEST_PROBE_TIMEOUT_SECONDS", default=30.0)
# The module run as the decoder child process (tests point it at decoders that crash or hang).
INGEST_DECODER_MODULE = "workers.media.video"
FILE_UPLOAD_HANDLERS = ["apps.media.uploads.SizeLimitedUploadHandler"]

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Label Studio is a Django app too, and often on the same host (127.0.0.1:8000 and :8080 in
# `make demo`). Cookies are scoped by host, not port: under Django's default names
# (`sessionid`, `csrftoken`) logging in to one logs the browser out of the other.
SESSION_COOKIE_NAME = env.str("DJANGO_SESSION_COOKIE_NAME", default="vivecaption_sessionid")
CSRF_COOKIE_NAME = env.str("DJANGO_CSRF_COOKIE_NAME", default="vivecaption_csrftoken")

# --- Cache: the throttles' counters (API token endpoint, HTML login) live here, so every web process
# must see the same one. Production: Redis, required (production.py); `make demo` (two gunicorn
# workers, no Redis): a folder under var/, shared by its processes; tests: per-process memory.
CACHE_URL = env.str("CACHE_URL", default="")


def redis_cache(url: str) -> dict:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"CACHE_URL must be a redis://, rediss:// or unix:// URL, not {url!r}.")
    return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "KEY_PREFIX": "vivecaption"}


CACHES = {
    "default": redis_cache(CACHE_URL)
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}
}

# The HTML login pages (ours and the admin's): after LOGIN_FAILURE_LIMIT failed sign-ins for one
# username from one address, or LOGIN_FAILURE_LIMIT_PER_IP from one address, within the window,
# further attempts get 429 until the window ends (apps/accounts/login_throttle.py).
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_LIMIT_PER_IP = env.int("LOGIN_FAILURE_LIMIT_PER_IP", default=50)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=15 * 60)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first so that an anonymous API call gets 401 with a WWW-Authenticate header.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"anon": env.str("API_TOKEN_THROTTLE", default="20/min")},
    # Proxies in front that append to X-Forwarded-For (1 behind one TLS proxy). 0: the client's
    # address is REMOTE_ADDR and X-Forwarded-For, which anyone can send, is ignored. The API's and
    # the login page's throttles both key on the address this gives.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "VIVECaption Studio API",
    "DESCRIPTION": "Character-consistent structured captioning of video frames.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the installed sidecar package: the app works offline, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery: job state lives in the database; the broker only carries job ids. ---
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_DIR = VAR_DIR / "broker"


def broker_transport_options(broker_url: str, folder: Path) -> dict:
    if broker_url.startswith("filesystem://"):
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),  # else broadcast files land in the working directory
            "store_processed": False,
        }
    # A redelivery after this timeout is harmless: a job is claimed once in the database.
    return {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}


CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL, CELERY_BROKER_DIR)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=3.0)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_SOFT_TIME_LIMIT = env.int("JOB_SOFT_TIME_LIMIT_SECONDS", default=6 * 3600)
CELERY_TASK_TIME_LIMIT = env.int("JOB_TIME_LIMIT_SECONDS", default=6 * 3600 + 600)
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {
        "task": "apps.jobs.tasks.sweep_jobs",
        "schedule": env.float("JOB_SWEEP_EVERY_SECONDS", default=60.0),
        "options": {"queue": "cpu"},
    },
}

JOB_HEARTBEAT_SECONDS = env.float("JOB_HEARTBEAT_SECONDS", default=10.0)
JOB_STALE_AFTER_SECONDS = env.float("JOB_STALE_AFTER_SECONDS", default=300.0)
JOB_REENQUEUE_AFTER_SECONDS = env.float("JOB_REENQUEUE_AFTER_SECONDS", default=600.0)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=3)

MODEL_PROFILE = env.str("MODEL_PROFILE", default="tiny")
# Where built tiny models and downloaded checkpoints live (workers only).
MODELS_DIR = Path(env.str("MODELS_DIR", default=str(VAR_DIR / "models")))
# How the demo's captioner is trained (`manage.py demo_models`): CaptionerTraining fields to
# change, e.g. fewer shots for a quicker, weaker model; empty: workers/demo/training.py's defaults.
DEMO_CAPTIONER_TRAINING: dict = {}
DEMO_CLIP_TRAINING: dict = {}  # ClipTraining fields (workers/demo/clip.py), the same way
DEMO_DETECTOR_TRAINING: dict = {}  # DetectorTraining fields (workers/demo/training.py), the same way
# Embedding runs on the gpu queue only where a GPU worker serves it (set in docker-compose).
EMBED_QUEUE = env.str("EMBED_QUEUE", default="cpu")
EMBED_BATCH_SIZE = env.int("EMBED_BATCH_SIZE", default=64)
EMBED_NUM_WORKERS = env.int("EMBED_NUM_WORKERS", default=2)
# Detection and captioning run where the VLM is: the gpu queue (a CPU machine runs a gpu-queue
# worker for the tiny profile, as `make demo` does).
VLM_QUEUE = env.str("VLM_QUEUE", default="gpu")
# A detection or caption run over more frames than this is split into shards of this many frames:
# each its own job, so every GPU worker listening takes one at once (one model load per shard).
RUN_SHARD_FRAMES = env.int("RUN_SHARD_FRAMES", default=1000)
# OpenAI-compatible model servers leads may point model versions at (workers send them frames and
# the API key): entries `scheme://host[:port][/path]`, compared as parsed URLs — scheme, host and
# port exactly (no port: the scheme's default port only; `:*`: any port), the path as a prefix at
# a "/" boundary; user-info, percent-encoding, queries, odd host forms are refused. A malformed
# entry is a configuration error (system check modelhub.E001). Rule: workers/vlm/allowlist.py.
VLM_ALLOWED_BASE_URLS = env.list("VLM_ALLOWED_BASE_URLS", default=[])

# --- Label Studio (annotators label the gold set there; only apps/labeling/client.py talks to it) ---
# `bin/labelstudio start` writes the local instance's URL and token to var/labelstudio.env; real
# environment variables win. The token stays on the server: browsers only ever get links.
LABEL_STUDIO_ENV_FILE = Path(env.str("LABEL_STUDIO_ENV_FILE", default=str(VAR_DIR / "labelstudio.env")))
if LABEL_STUDIO_ENV_FILE.exists():
    env.read_env(LABEL_STUDIO_ENV_FILE, overwrite=False)
LABEL_STUDIO_URL = env.str("LABEL_STUDIO_URL", default="")  # as this server reaches it
LABEL_STUDIO_PUBLIC_URL = env.str("LABEL_STUDIO_PUBLIC_URL", default="") or LABEL_STUDIO_URL  # as browsers do
LABEL_STUDIO_TOKEN = env.str("LABEL_STUDIO_TOKEN", default="")
LABEL_STUDIO_TIMEOUT_SECONDS = env.float("LABEL_STUDIO_TIMEOUT_SECONDS", default=30.0)
LABEL_STUDIO_RETRIES = env.int("LABEL_STUDIO_RETRIES", default=3)
LABEL_STUDIO_BACKOFF_SECONDS = env.float("LABEL_STUDIO_BACKOFF_SECONDS", default=1.0)
LABEL_STUDIO_WEBHOOK_HEADER = "X-VIVECaption-Webhook-Secret"
# This app as annotators' browsers reach it (image links), and as Label Studio's server does (webhooks).
LABELING_APP_URL = env.str("LABELING_APP_URL", default="http://127.0.0.1:8000")
LABELING_WEBHOOK_BASE_URL = env.str("LABELING_WEBHOOK_BASE_URL", default="") or LABELING_APP_URL
# Images reach Label Studio's viewer through signed links that expire; the reconciliation
# re-signs a project's links when half of this has passed.
LABELING_IMAGE_LINK_MAX_AGE_SECONDS = env.int("LABELING_IMAGE_LINK_MAX_AGE_SECONDS", default=30 * 24 * 3600)
LABELING_TASK_BATCH_SIZE = env.int("LABELING_TASK_BATCH_SIZE", default=1000)
CELERY_BEAT_SCHEDULE["reconcile-labels"] = {
    "task": "apps.labeling.tasks.reconcile_all",
    "schedule": env.float("LABELING_RECONCILE_EVERY_SECONDS", default=300.0),
    "options": {"queue": "cpu"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # One line per HTTP request to Label Studio drowns the commands' progress.
    "loggers": {"httpx": {"level": "WARNING"}},
}
