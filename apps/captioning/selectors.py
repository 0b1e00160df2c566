from django.db.models import Count, Q, QuerySet
from django.http import Http404

from apps.captioning.models import CaptionRun, DetectionRun
from apps.projects.models import Project


def detection_run_list(*, project: Project) -> QuerySet[DetectionRun]:
    return (
        DetectionRun.objects.filter(project=project)
        .select_related("model_version", "job", "gold_set")
        .annotate(done=Count("detections"), failed=Count("detections", filter=Q(detections__ok=False)))
        .order_by("-id")
    )


def caption_run_list(*, project: Project) -> QuerySet[CaptionRun]:
    return (
        CaptionRun.objects.filter(project=project)
        .select_related("model_version", "job", "detection_run")
        .annotate(done=Count("captions"), failed=Count("captions", filter=Q(captions__ok=False)))
        .order_by("-id")
    )


def detection_run_get(*, project: Project, run_id: int) -> DetectionRun:
    run = detection_run_list(project=project).filter(id=run_id).first()
    if run is None:
        raise Http404("No such detection run.")
    return run


def caption_run_get(*, project: Project, run_id: int) -> CaptionRun:
    run = caption_run_list(project=project).filter(id=run_id).first()
    if run is None:
        raise Http404("No such caption run.")
    return run
