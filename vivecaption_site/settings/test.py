"""Test settings: the same backends as configured (SQLite + filesystem broker by default,
PostgreSQL + Redis in CI), fast password hashing, media in a throwaway folder."""

from pathlib import Path

from .base import *  # noqa: F403
from .base import CELERY_BROKER_URL, DATABASES, STATIC_ROOT, VAR_DIR, broker_transport_options, env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "test-media")))

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not ":memory:", so that real worker processes started by tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

JOB_HEARTBEAT_SECONDS = env.float("JOB_HEARTBEAT_SECONDS", default=0.5)

# Per-process memory: throttle counters never leak between runs or into a running `make demo`
# (the live test server is a thread of the test process, so it shares them with the tests).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# whitenoise warns when STATIC_ROOT is missing; collectstatic fills it in production.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Never share a filesystem queue with a running `make demo`.
CELERY_BROKER_DIR = VAR_DIR / "test-broker"
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL, CELERY_BROKER_DIR)

# Tests run fake model servers on 127.0.0.1 at free ports: ":*" is the allow-list's any-port wildcard.
VLM_ALLOWED_BASE_URLS = ["http://127.0.0.1:*", "http://vllm:8000/"]

# A demo captioner trained in seconds: the tests check the job and the caching, not the quality.
DEMO_CAPTIONER_TRAINING = {"seconds": 12, "epochs": 1, "hidden_size": 32, "vocab_size": 700, "batch_size": 8}
DEMO_CLIP_TRAINING = {"seconds": 16, "frames_per_shot": 1, "epochs": 1, "batch_size": 8}
DEMO_DETECTOR_TRAINING = {"seconds": 12, "epochs": 1, "batch_size": 8}
