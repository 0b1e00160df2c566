# syntax=docker/dockerfile:1
#
# VIVECaption Studio image: one image for web (gunicorn), Celery workers and beat.
#
#   docker build -t vivecaption-studio .                     # web / CPU worker / beat
#   docker build --build-arg WITH_ML=1 -t vivecaption-ml .   # + torch & friends for GPU workers
#
# The container's command picks the role; see docker/entrypoint.sh.

FROM python:3.11-slim

# WITH_ML=1 additionally installs requirements-ml.txt (torch, transformers,
# peft, open_clip, ...) when that file exists. It is several GB, so only the
# GPU worker image turns it on.
ARG WITH_ML=0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=vivecaption_site.settings.production \
    VIVE_VAR_DIR=/app/var

# Runtime image libraries only (Pillow/torchvision link against them). No
# ffmpeg: the PyAV wheels bundle their own.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libjpeg62-turbo zlib1g \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged runtime user. A fixed UID keeps file ownership on the shared
# `var` volume identical across web and worker containers.
# It gets a writable home so libraries that cache under ~ don't fail.
RUN groupadd --system --gid 10001 vive \
    && useradd --system --uid 10001 --gid vive --create-home --home-dir /home/vive \
        --shell /usr/sbin/nologin vive

WORKDIR /app

# Dependencies first so code edits don't invalidate the (slow) pip layers.
# The glob copies requirements-ml.txt too when it exists, without failing
# when it doesn't.
COPY requirements*.txt ./
RUN pip install -r requirements.txt
RUN if [ "$WITH_ML" = "1" ] && [ -f requirements-ml.txt ]; then \
        pip install -r requirements-ml.txt; \
    else \
        echo "Skipping ML requirements (WITH_ML=$WITH_ML)"; \
    fi

# Application code stays root-owned (read-only for the runtime user); only
# the var dir (media, static, celerybeat schedule) and /models (model
# weights / HF cache for GPU workers) are writable. Creating them here with
# the right owner means fresh named volumes mounted on them inherit it.
COPY . .
RUN chmod 0755 docker/entrypoint.sh \
    && mkdir -p /app/var/media /app/var/static /models/hf \
    && chown -R vive:vive /app/var /models

USER vive

# Collect static at build time: catches broken static config early and seeds
# the `var` volume on first creation. The env values are build-only dummies
# passed inline so they never persist in the image; real values come from
# the runtime environment (.env).
RUN DJANGO_SECRET_KEY=build-only-not-a-secret-collectstatic-0123456789abcdefghijklmnopqrstuvwxyz \
    DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=postgres://build:build@localhost:5432/build \
    CELERY_BROKER_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput

EXPOSE 8000

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
