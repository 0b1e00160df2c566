"""Celery adapters: take an id, call a service."""

from celery import shared_task

from apps.labeling import services
from apps.labeling.client import LabelStudioUnavailable
from apps.labeling.models import LabelingProject

MAX_BACKOFF_SECONDS = 300


@shared_task(name="apps.labeling.tasks.sync_pending", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def sync_pending(self, labeling_project_id: int) -> dict:
    """Fetch the annotations webhooks named; while Label Studio is unavailable, back off and retry."""
    labeling_project = LabelingProject.objects.filter(id=labeling_project_id).first()
    if labeling_project is None:
        return {}
    try:
        return services.labels_sync_pending(labeling_project=labeling_project)
    except LabelStudioUnavailable as exc:
        countdown = min(MAX_BACKOFF_SECONDS, 5 * 2**self.request.retries)
        raise self.retry(exc=exc, countdown=countdown, queue="cpu") from exc


@shared_task(name="apps.labeling.tasks.reconcile_all", ignore_result=True)
def reconcile_all() -> list[int]:
    services.labelstudio_health_check()  # what the project pages show; they never ask themselves
    return services.labeling_reconcile_all()


@shared_task(name="apps.labeling.tasks.check_health", ignore_result=True)
def check_health() -> None:
    """A page found the health reading missing or old (services.labelstudio_health_request)."""
    services.labelstudio_health_check()
