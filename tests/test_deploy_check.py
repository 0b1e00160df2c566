"""`manage.py check --deploy` under production settings with the environment README documents."""

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
}


def _check(extra_env: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update(DOCUMENTED_PRODUCTION_ENV | extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_deploy_check_is_clean_with_the_documented_environment():
    result = _check({})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in DOCUMENTED_PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
