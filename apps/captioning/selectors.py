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


def caption_run_health(run: CaptionRun, token_limit: int = 1024) -> dict:
    """The model-free health check of a whole caption run: structure adherence (parses, keys
    present, non-empty) and lengths in the captioner's tokens (counted by the caption job)."""
    from collections import Counter

    from workers.metrics.health import caption_health

    rows = list(run.captions.only("id", "raw_text", "tokens", "asset_id"))
    checks = [caption_health(row.id, row.raw_text, str.split) for row in rows]  # structure only
    tokens = [row.tokens for row in rows if row.tokens is not None]
    return {
        "n": len(rows),
        "adheres": sum(c.adheres for c in checks),
        "parsed": sum(c.parsed for c in checks),
        "repaired": sum(bool(c.repairs) for c in checks),
        "repairs": dict(Counter(repair for c in checks for repair in c.repairs)),
        "empty_fields": dict(Counter(field for c in checks for field in c.empty_fields)),
        "missing_fields": dict(Counter(field for c in checks for field in c.missing_fields)),
        "tokens": tokens,
        "counted": len(tokens),
        "token_limit": token_limit,
        "too_long": [row.asset_id for row in rows if row.tokens is not None and row.tokens > token_limit],
        "failing": [
            (row.asset_id, c.error or ", ".join(c.missing_fields + c.empty_fields))
            for row, c in zip(rows, checks, strict=True)
            if not c.adheres
        ][:50],
    }
