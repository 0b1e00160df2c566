from django.db.models import QuerySet
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
        DetectionRun.objects.filter(project=project).select_related("model_version", "job", "gold_set").order_by("-id")
    )


def caption_run_list(*, project: Project) -> QuerySet[CaptionRun]:
    return (
        CaptionRun.objects.filter(project=project)
        .select_related("model_version", "job", "detection_run")
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


HEALTH_SUMMARY_VERSION = 2  # bump when the summary's shape changes: stored summaries are then made again
TOKEN_BINS = 30


def _token_histogram(tokens: list[int]) -> dict:
    """Caption lengths in TOKEN_BINS equal bins (what the page plots, whatever the run's size)."""
    if not tokens:
        return {"start": 0, "width": 1, "counts": []}
    low, high = min(tokens), max(tokens)
    width = max(1, -(-(high - low + 1) // TOKEN_BINS))
    counts = [0] * (-(-(high - low + 1) // width))
    for count in tokens:
        counts[(count - low) // width] += 1
    return {"start": low, "width": width, "counts": counts}


def caption_run_health_summary(run: CaptionRun) -> dict:
    """The model-free health check of a whole caption run: structure adherence (parses, keys
    present, non-empty) and lengths in the captioner's tokens (counted by the caption job). It
    reads every caption, so it is made once per change of the run's answers (services
    `caption_run_health_refresh`), never per request."""
    from collections import Counter

    from workers.metrics.health import caption_health

    repairs, empty, missing = Counter(), Counter(), Counter()
    tokens, failing = [], []
    n = adheres = parsed = repaired = 0
    rows = run.captions.order_by("id").values_list("id", "asset_id", "raw_text", "tokens").iterator(chunk_size=5000)
    for caption_id, asset_id, raw_text, token_count in rows:
        check = caption_health(caption_id, raw_text, str.split)  # structure only
        n += 1
        adheres += check.adheres
        parsed += check.parsed
        repaired += bool(check.repairs)
        repairs.update(check.repairs)
        empty.update(check.empty_fields)
        missing.update(check.missing_fields)
        if token_count is not None:
            tokens.append(token_count)
        if not check.adheres and len(failing) < 50:
            failing.append((asset_id, check.error or ", ".join(check.missing_fields + check.empty_fields)))
    return {
        "version": HEALTH_SUMMARY_VERSION,
        "answered": run.answered_count,
        "n": n,
        "adheres": adheres,
        "parsed": parsed,
        "repaired": repaired,
        "repairs": dict(repairs),
        "empty_fields": dict(empty),
        "missing_fields": dict(missing),
        "counted": len(tokens),
        "token_histogram": _token_histogram(tokens),
        "failing": failing,
    }


def caption_run_health_current(run: CaptionRun) -> bool:
    """Whether the run's stored health summary is of its answers as they are now."""
    health = run.health or {}
    return health.get("version") == HEALTH_SUMMARY_VERSION and health.get("answered") == run.answered_count


def captions_over(run: CaptionRun, token_limit: int) -> int:
    return run.captions.filter(tokens__gt=token_limit).count()
