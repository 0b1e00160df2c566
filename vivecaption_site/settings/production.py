"""Production: secrets only from the environment, HTTPS everywhere, no debug."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import CACHE_URL, CELERY_BROKER_URL, env, redis_cache

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")  # no default: refuse to start without one
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")

# base.py falls back to a SQLite file under var/ for one-machine use; in production that would be
# a silent, unshared, unbacked-up database. An explicit DATABASE_URL (even sqlite://) is required.
if not env.str("DATABASE_URL", default=""):
    raise ImproperlyConfigured(
        "Set the DATABASE_URL environment variable (e.g. postgres://user:password@host:5432/vive): "
        "production settings do not fall back to SQLite."
    )

# Throttle counters (login page, API token endpoint) must be shared by every gunicorn worker and
# host: Redis. CACHE_URL, or else the broker's Redis when the broker is Redis (keys prefixed
# `vivecaption:`, apart from Celery's).
if not CACHE_URL and not CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured(
        "Set the CACHE_URL environment variable to a Redis URL (e.g. redis://redis-host:6379/1): production "
        "keeps throttle counters in Redis, and the broker is not Redis to fall back to."
    )
CACHES = {"default": redis_cache(CACHE_URL or CELERY_BROKER_URL)}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_REFERRER_POLICY = "same-origin"

# Media on S3-compatible storage (AWS, MinIO, Ceph…) through django-storages, when chosen:
#   DJANGO_DEFAULT_STORAGE=storages.backends.s3.S3Storage plus the AWS_* variables below.
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default=None)
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default=None)
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default=None)
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default=None)
AWS_DEFAULT_ACL = None  # private objects: media is only ever served through permission-checked views
AWS_QUERYSTRING_AUTH = True
AWS_S3_FILE_OVERWRITE = False

STORAGES = {
    "default": {"BACKEND": env.str("DJANGO_DEFAULT_STORAGE", default="django.core.files.storage.FileSystemStorage")},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
