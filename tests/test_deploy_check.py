"""`manage.py check --deploy` under production settings with the environment README documents,
and the settings production refuses to start without."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Keep in step with README.md, section "Production settings".
DOCUMENTED_PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "vivecaption_site.settings.production",
    "DJANGO_SECRET_KEY": "k" * 20 + "an-example-of-a-long-random-secret-0123456789-abcdefghij",
    "DJANGO_ALLOWED_HOSTS": "vive.example.org",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://vive.example.org",
    "DATABASE_URL": "postgres://vive:secret@127.0.0.1:5432/vive",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "CACHE_URL": "redis://127.0.0.1:6379/1",
    "NUM_PROXIES": "1",
}
# What the machine's own environment must not add (CI sets DATABASE_URL and CELERY_BROKER_URL).
OURS = ("DJANGO_", "DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "NUM_PROXIES")


def _run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    return subprocess.run(args, cwd=REPO, env=clean | env, capture_output=True, text=True, timeout=120)


def _check(env: dict) -> subprocess.CompletedProcess:
    return _run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)


def _without(*names: str) -> dict:
    return {k: v for k, v in DOCUMENTED_PRODUCTION_ENV.items() if k not in names}


def _setting(expression: str, env: dict) -> subprocess.CompletedProcess:
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    return _run([sys.executable, "-c", code], env)


def test_production_refuses_to_start_without_a_secret_key():
    result = _run([sys.executable, "manage.py", "check"], _without("DJANGO_SECRET_KEY"))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_refuses_to_fall_back_to_sqlite():
    result = _setting("settings.DATABASES['default']['ENGINE']", _without("DATABASE_URL"))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "Set the DATABASE_URL environment variable" in result.stderr and "SQLite" in result.stderr
    with_it = _setting("settings.DATABASES['default']['ENGINE']", DOCUMENTED_PRODUCTION_ENV)
    assert with_it.returncode == 0, with_it.stderr
    assert with_it.stdout.strip() == "django.db.backends.postgresql"


def test_production_caches_in_redis():
    expression = "settings.CACHES['default']['BACKEND'], settings.CACHES['default']['LOCATION']"
    result = _setting(expression, DOCUMENTED_PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.core.cache.backends.redis.RedisCache redis://127.0.0.1:6379/1"
    # Without CACHE_URL: the broker's Redis.
    result = _setting(expression, _without("CACHE_URL"))
    assert result.stdout.strip() == "django.core.cache.backends.redis.RedisCache redis://127.0.0.1:6379/0"


def test_production_refuses_to_start_without_a_shared_cache():
    env = _without("CACHE_URL") | {"CELERY_BROKER_URL": "filesystem://"}
    result = _setting("settings.CACHES", env)
    assert result.returncode != 0
    assert "Set the CACHE_URL environment variable to a Redis URL" in result.stderr
    result = _setting("settings.CACHES", DOCUMENTED_PRODUCTION_ENV | {"CACHE_URL": "locmem://"})
    assert result.returncode != 0 and "CACHE_URL must be a redis://" in result.stderr


def test_the_app_and_label_studio_cookies_do_not_collide():
    # Label Studio (a Django app, often on the same host) keeps Django's default names.
    result = _setting("settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME", DOCUMENTED_PRODUCTION_ENV)
    assert result.stdout.split() == ["vivecaption_sessionid", "vivecaption_csrftoken"]
