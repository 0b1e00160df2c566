"""Writes for evaluation: eval sets (leak-free by construction and checked), comparisons."""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.curation.models import GoldItem
from apps.evaluation.models import (
    CaptionScore,
    CharacterReference,
    Comparison,
    ComparisonPipeline,
    EvalSet,
    EvalSetFrame,
)
from apps.evaluation.selectors import DEFAULT_PARAMS, comparison_inputs_key, comparison_test_split
from apps.jobs.services import job_start_for
from apps.media.models import Asset
from apps.modelhub.models import ModelRole, ModelVersion
from apps.projects.models import Project
from workers.metrics.sampling import LeakageError, check_no_leakage, sample_eval_set


def _gold_asset_ids(project: Project) -> set[int]:
    """Every frame of every gold-set version: none of them may be judged (train/test leakage)."""
    return set(GoldItem.objects.filter(gold_set__project=project).values_list("asset_id", flat=True))


def eval_set_check(eval_set: EvalSet) -> None:
    try:
        check_no_leakage(eval_set.frame_ids(), _gold_asset_ids(eval_set.project))
    except LeakageError as exc:
        raise ApplicationError(f"{eval_set} cannot be used: {exc}") from exc


@transaction.atomic
def eval_set_create(
    *,
    project: Project,
    size: int = 300,
    seed: int = 0,
    name: str = "",
    created_by: User | None,
    asset_ids: list[int] | None = None,
) -> EvalSet:
    """Sample `size` frames (seeded) from the project's frames outside every gold set; or take the
    given frames, refused if any is a gold frame."""
    if size < 1:
        raise ApplicationError("An evaluation set needs at least one frame.", field="size")
    gold = _gold_asset_ids(project)
    if asset_ids is not None:
        found = set(Asset.objects.filter(project=project, id__in=asset_ids).values_list("id", flat=True))
        missing = sorted(set(asset_ids) - found)
        if missing:
            raise ApplicationError(f"Not frames of this project: {missing[:10]}")
        try:
            check_no_leakage(asset_ids, gold)
        except LeakageError as exc:
            raise ApplicationError(str(exc), field="asset_ids") from exc
        keys, excluded, requested = sorted(set(asset_ids)), 0, len(set(asset_ids))
    else:
        candidates = Asset.objects.filter(project=project).values_list("id", flat=True)
        sample = sample_eval_set(candidates, gold, n=size, seed=seed)
        if not sample.keys:
            raise ApplicationError("Every frame of this project is in a gold set: nothing is left to evaluate on.")
        keys, excluded, requested = sample.keys, sample.excluded_gold, size
    eval_set = EvalSet.objects.create(
        project=project,
        name=name or f"Eval set (seed {seed})",
        seed=seed,
        requested=requested,
        excluded_gold=excluded,
        created_by=created_by,
    )
    eval_set_frames_set(eval_set=eval_set, asset_ids=keys)
    return eval_set


EVAL_FRAME_ROWS_PER_INSERT = 5000


def eval_set_frames_set(*, eval_set: EvalSet, asset_ids: list[int]) -> None:
    """The frames of a new eval set, in the order given, a row each, written in bulk."""
    EvalSetFrame.objects.bulk_create(
        (
            EvalSetFrame(eval_set=eval_set, position=position, asset_id=asset_id)
            for position, asset_id in enumerate(asset_ids)
        ),
        batch_size=EVAL_FRAME_ROWS_PER_INSERT,
    )
    EvalSet.objects.filter(id=eval_set.id).update(frame_count=len(asset_ids))
    eval_set.frame_count = len(asset_ids)


@transaction.atomic
def comparison_start(
    *,
    eval_set: EvalSet,
    captioner: ModelVersion,
    detectors: list[ModelVersion],
    created_by: User | None,
    judge: ModelVersion | None = None,
    params: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> Comparison:
    """No detection, then one pipeline per detector (e.g. base and SFT), all with the same captioner."""
    project = eval_set.project
    eval_set_check(eval_set)
    if captioner.project_id != project.id or captioner.role != ModelRole.CAPTIONER:
        raise ApplicationError(f"{captioner} is not a captioner of this project.")
    if not detectors:
        raise ApplicationError("Choose at least one detector (e.g. the base and the fine-tuned one).")
    for detector in detectors:
        if detector.project_id != project.id or detector.role != ModelRole.DETECTOR:
            raise ApplicationError(f"{detector} is not a detector of this project.")
    if len({d.id for d in detectors}) != len(detectors):
        raise ApplicationError("A detector is listed twice.")
    if judge is not None and judge.project_id != project.id:
        raise ApplicationError("The judge belongs to another project.")
    if not project.characters.exists():
        raise ApplicationError("The project has no characters.")
    unknown = sorted(set(params or {}) - set(DEFAULT_PARAMS))
    if unknown:
        raise ApplicationError(f"Unknown parameters: {', '.join(unknown)}")
    test_labels, source = comparison_test_split(project, detectors)
    params = {**DEFAULT_PARAMS, **(params or {})}
    comparison = Comparison.objects.create(
        project=project,
        eval_set=eval_set,
        captioner=captioner,
        judge=judge,
        test_labels=test_labels,
        test_split_source=source,
        profile=settings.MODEL_PROFILE,
        params=params,
        inputs_key=comparison_inputs_key(
            eval_set=eval_set,
            captioner=captioner,
            detectors=detectors,
            judge=judge,
            test_labels=test_labels,
            params=params,
        ),
        created_by=created_by,
    )
    ComparisonPipeline.objects.create(comparison=comparison, position=0, label="no detection")
    for position, detector in enumerate(detectors, start=1):
        ComparisonPipeline.objects.create(
            comparison=comparison, position=position, label=f"{detector.name} → captioner", detector=detector
        )
    job_start_for(comparison, kind="evaluate", created_by=created_by, enqueue=enqueue)
    return comparison


STAGE_FIELDS = ("test_detection_run", "eval_detection_run", "caption_run", "test_caption_run")


def comparison_pipeline_stage_set(*, pipeline: ComparisonPipeline, field: str, run) -> None:
    """Keep the detection or caption run an evaluation started for one of its pipelines' stages,
    so a retried evaluation finds it instead of starting it again."""
    if field not in STAGE_FIELDS:
        raise ValueError(f"{field!r} is not a pipeline stage; stages: {', '.join(STAGE_FIELDS)}")
    setattr(pipeline, field, run)
    pipeline.save(update_fields=[field])


SCORE_ROWS_PER_WRITE = 1000


def _caption_scores_update(*, pipeline: ComparisonPipeline, values: dict[int, dict[str, Any]]) -> None:
    """Each scoring stage writes its own columns of the per-caption rows; the first creates them.
    In bulk, a thousand rows a write. The rows are created first (a conflict ignored), then updated:
    two stages scoring the same captions at once (CLIPScore and the judge) never collide."""
    items = list(values.items())
    for start in range(0, len(items), SCORE_ROWS_PER_WRITE):
        chunk = dict(items[start : start + SCORE_ROWS_PER_WRITE])
        CaptionScore.objects.bulk_create(
            [CaptionScore(pipeline=pipeline, asset_id=asset_id) for asset_id in chunk], ignore_conflicts=True
        )
        rows = list(CaptionScore.objects.filter(pipeline=pipeline, asset_id__in=list(chunk)))
        for row in rows:
            for field, value in chunk[row.asset_id].items():
                setattr(row, field, value)
        fields = sorted({field for row_values in chunk.values() for field in row_values})
        CaptionScore.objects.bulk_update(rows, fields)


@transaction.atomic
def caption_scores_record_health(*, pipeline: ComparisonPipeline, health: dict[int, Any]) -> None:
    _caption_scores_update(
        pipeline=pipeline,
        values={
            asset_id: {
                "tokens": row.tokens,
                "too_long": row.too_long,
                "adheres": row.adheres,
                "health": {
                    "parsed": row.parsed,
                    "repairs": list(row.repairs),
                    "missing": list(row.missing_fields),
                    "empty": list(row.empty_fields),
                    "error": row.error,
                },
            }
            for asset_id, row in health.items()
        },
    )


@transaction.atomic
def caption_scores_record_clip(*, pipeline: ComparisonPipeline, rows) -> None:
    _caption_scores_update(
        pipeline=pipeline,
        values={row.key: {"clip_score": row.clip_score, "clip_chunked": bool(row.chunked)} for row in rows},
    )


@transaction.atomic
def caption_scores_record_judge(*, pipeline: ComparisonPipeline, rows) -> None:
    _caption_scores_update(
        pipeline=pipeline,
        values={
            row.key: {
                "judge_status": row.status,
                "judge_scores": dict(row.scores or {}),
                "judge_overall": row.overall,
                "judge_raw": (row.raw or "")[:4000],
            }
            for row in rows
        },
    )


@transaction.atomic
def caption_scores_record_characters(*, pipeline: ComparisonPipeline, rows, reference: CharacterReference) -> None:
    """Each caption's `characters` field scored against its frame's reference names (the rows of a
    `workers.metrics.detection.DetectionReport`)."""
    _caption_scores_update(
        pipeline=pipeline,
        values={
            row.key: {
                "characters_reference": reference,
                "characters_precision": row.precision,
                "characters_recall": row.recall,
                "characters_f1": row.f1,
                "characters_mistakes": row.mistakes,
            }
            for row in rows
        },
    )


def comparison_report_save(*, comparison: Comparison, report: dict[str, Any]) -> None:
    comparison.report = report
    comparison.save(update_fields=["report", "updated_at"])
