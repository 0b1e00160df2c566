from django.db.models import Count, Q, QuerySet
from django.http import Http404

from apps.captioning.models import CaptionPipeline, CaptionRun, DetectionRun
from apps.core.inputs import done_before, inputs_key
from apps.curation.models import GoldSet
from apps.modelhub.models import ModelVersion
from apps.modelhub.selectors import model_version_as_run
from apps.projects.models import Project
from apps.projects.selectors import roster_as_models_see_it
from workers.vlm.prompts import CAPTION_PROMPT_VERSION, DETECTION_PROMPT_VERSION


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


def detection_frames(*, gold_set: GoldSet | None, asset_ids: list[int] | None) -> list[int]:
    """The frames a detection run goes over, in order, once each: a gold set's, or those given."""
    if gold_set is not None:
        asset_ids = list(gold_set.items.order_by("id").values_list("asset_id", flat=True))
    return list(dict.fromkeys(asset_ids or []))


def _prompted_run(project: Project, model_version: ModelVersion, prompt_version: str, asset_ids: list[int]) -> dict:
    """What any run that prompts a model about frames depends on."""
    return {
        "model": model_version_as_run(model_version),
        "roster": roster_as_models_see_it(project=project),
        "prompt": prompt_version,
        "frames": list(dict.fromkeys(asset_ids)),
    }


def detection_inputs_key(
    *, project: Project, model_version: ModelVersion, gold_set: GoldSet | None, asset_ids: list[int]
) -> str:
    return inputs_key(
        {
            "run": "detect",
            **_prompted_run(project, model_version, DETECTION_PROMPT_VERSION, asset_ids),
            "gold_set": gold_set.id if gold_set else None,
        }
    )


def caption_inputs_key(
    *,
    project: Project,
    model_version: ModelVersion,
    pipeline: str,
    detection_run: DetectionRun | None,
    asset_ids: list[int],
) -> str:
    return inputs_key(
        {
            "run": "caption",
            **_prompted_run(project, model_version, CAPTION_PROMPT_VERSION, asset_ids),
            "schema": project.caption_schema_version,
            "pipeline": pipeline,
            # the characters it is given are that run's stored answers
            "detection_run": detection_run.id if detection_run and pipeline == CaptionPipeline.DETECTION else None,
        }
    )


def detection_run_done_before(
    *,
    project: Project,
    model_version: ModelVersion,
    gold_set: GoldSet | None = None,
    asset_ids: list[int] | None = None,
) -> DetectionRun | None:
    """A finished detection run with the inputs `detection_run_start` would be given now."""
    frames = detection_frames(gold_set=gold_set, asset_ids=asset_ids)
    key = detection_inputs_key(project=project, model_version=model_version, gold_set=gold_set, asset_ids=frames)
    return done_before(DetectionRun.objects.filter(project=project), key)


def caption_run_done_before(
    *,
    project: Project,
    model_version: ModelVersion,
    pipeline: str,
    asset_ids: list[int],
    detection_run: DetectionRun | None = None,
) -> CaptionRun | None:
    """A finished caption run with the inputs `caption_run_start` would be given now."""
    key = caption_inputs_key(
        project=project,
        model_version=model_version,
        pipeline=pipeline,
        detection_run=detection_run,
        asset_ids=asset_ids,
    )
    return done_before(CaptionRun.objects.filter(project=project), key)


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
