"""What the labelling services share: progress callbacks, recording a fault, marking a change."""

from collections.abc import Callable

from django.db.models import F
from django.utils import timezone

from apps.labeling.models import LabelingProject
from apps.labeling.services.health import labelstudio_health_record

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    pass


def record_fault(labeling_project: LabelingProject, exc: Exception) -> None:
    """ "Sync pending": the periodic reconciliation retries; the project page shows Label Studio down."""

    LabelingProject.objects.filter(id=labeling_project.id).update(
        sync_error=str(exc)[:2000], sync_error_at=timezone.now()
    )
    labelstudio_health_record(up=False, detail=str(exc))


def data_changed(labeling_project: LabelingProject) -> None:
    """What the labelling page shows changed: its summary is computed again on the next read."""
    LabelingProject.objects.filter(id=labeling_project.id).update(
        data_version=F("data_version") + 1, data_changed_at=timezone.now()
    )
