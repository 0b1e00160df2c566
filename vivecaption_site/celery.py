"""The Celery app. Queues: `cpu` (ingest, clustering, sync, metrics) and `gpu` (models).

GPU workers run with `--concurrency 1 --max-tasks-per-child 1` so that each job starts in a
fresh process and gives its GPU memory back when it ends.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vivecaption_site.settings.dev")

app = Celery("vivecaption_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
