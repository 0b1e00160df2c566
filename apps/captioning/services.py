"""Writes for detection and captioning runs."""

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count, F, Q

from apps.captioning.models import (
    Caption,
    CaptionPipeline,
    CaptionRun,
    CaptionRunFrame,
    Detection,
    DetectionRun,
    DetectionRunFrame,
)
from apps.captioning.selectors import (
    HEALTH_SUMMARY_VERSION,
    caption_inputs_key,
    caption_run_health_current,
    caption_run_health_summary,
    detection_frames,
    detection_inputs_key,
)
from apps.core.errors import ApplicationError
from apps.curation.models import GoldSet
from apps.jobs.models import Job
from apps.jobs.services import job_start_for
from apps.media.models import Asset
from apps.modelhub.models import ModelRole, ModelVersion
from apps.projects.models import Project
from workers.vlm.prompts import CAPTION_PROMPT_VERSION, DETECTION_PROMPT_VERSION

IDS_PER_QUERY = 10_000  # SQLite allows 32,766 parameters in one statement


def _id_slices(asset_ids: list[int]):
    for start in range(0, len(asset_ids), IDS_PER_QUERY):
        yield asset_ids[start : start + IDS_PER_QUERY]


def _check_assets(project: Project, asset_ids: list[int]) -> list[int]:
    if not asset_ids:
        raise ApplicationError("Choose at least one frame.")
    asset_ids = list(dict.fromkeys(asset_ids))
    found: set[int] = set()
    for chunk in _id_slices(asset_ids):
        found.update(Asset.objects.filter(project=project, id__in=chunk).values_list("id", flat=True))
    missing = [asset_id for asset_id in asset_ids if asset_id not in found]
    if missing:
        raise ApplicationError(f"Not frames of this project: {missing[:10]}")
    return asset_ids


FRAME_ROWS_PER_INSERT = 5000
FRAME_IDS_PER_STATEMENT = 100_000  # PostgreSQL: ids sent as one array per INSERT … SELECT


def _frames_insert_select(row, run, asset_ids: list[int]) -> int:
    """PostgreSQL: the membership rows written by the database from arrays of ids (no model object
    per frame), joined to the run's project's frames as they are written. Returns how many were
    written: fewer than given means some are not frames of the project."""
    table, asset_table = connection.ops.quote_name(row._meta.db_table), connection.ops.quote_name(Asset._meta.db_table)
    written = 0
    with connection.cursor() as cursor:
        for offset in range(0, len(asset_ids), FRAME_IDS_PER_STATEMENT):
            cursor.execute(
                f"INSERT INTO {table} (run_id, position, asset_id) "  # noqa: S608 (names from the models)
                f"SELECT %s, given.ord - 1 + %s, given.id FROM unnest(%s::bigint[]) WITH ORDINALITY AS given(id, ord) "
                f"JOIN {asset_table} asset ON asset.id = given.id AND asset.project_id = %s",
                [run.id, offset, asset_ids[offset : offset + FRAME_IDS_PER_STATEMENT], run.project_id],
            )
            written += cursor.rowcount
    return written


@transaction.atomic
def run_frames_set(*, run: DetectionRun | CaptionRun, asset_ids: list[int]) -> None:
    """The frames of a new run, in order: a row per frame at its position, written in bulk (also
    for runs whose answers come from elsewhere: benchmarks, tests, an import). Every frame must be
    the run's project's (call it inside the transaction that creates the run: an error undoes it).
    On PostgreSQL the database writes and checks the rows in one statement per 100,000 frames."""
    row = DetectionRunFrame if isinstance(run, DetectionRun) else CaptionRunFrame
    asset_ids = list(dict.fromkeys(asset_ids))
    if not asset_ids:
        raise ApplicationError("Choose at least one frame.")
    if connection.vendor == "postgresql":
        if _frames_insert_select(row, run, asset_ids) < len(asset_ids):
            _check_assets(run.project, asset_ids)  # names the frames that are not the project's
    else:
        _check_assets(run.project, asset_ids)
        row.objects.bulk_create(
            (row(run=run, position=position, asset_id=asset_id) for position, asset_id in enumerate(asset_ids)),
            batch_size=FRAME_ROWS_PER_INSERT,
        )
    type(run).objects.filter(id=run.id).update(frame_count=len(asset_ids))
    run.frame_count = len(asset_ids)


def _check_version(project: Project, version: ModelVersion, role: str) -> None:
    if version.project_id != project.id or version.role != role:
        raise ApplicationError(f"{version} is not a {role} of this project.")


@transaction.atomic
def detection_run_start(
    *,
    project: Project,
    model_version: ModelVersion,
    created_by: User | None,
    gold_set: GoldSet | None = None,
    asset_ids: list[int] | None = None,
    enqueue: bool = True,
    parent_job: Job | None = None,
    parent_progress: tuple[float, float] = (0.0, 0.0),
    frames_from: str = "",
) -> DetectionRun:
    _check_version(project, model_version, ModelRole.DETECTOR)
    if gold_set is not None and gold_set.project_id != project.id:
        raise ApplicationError("That gold set belongs to another project.")
    if not project.characters.exists():
        raise ApplicationError("The project has no characters to detect: add the roster first.")
    frames = detection_frames(gold_set=gold_set, asset_ids=asset_ids)
    if not frames:
        raise ApplicationError("Choose at least one frame.")
    run = DetectionRun.objects.create(
        project=project,
        model_version=model_version,
        gold_set=gold_set,
        frames_from=frames_from or (f"gold set {gold_set}" if gold_set else "frames chosen at launch"),
        prompt_version=DETECTION_PROMPT_VERSION,
        inputs_key=detection_inputs_key(
            project=project, model_version=model_version, gold_set=gold_set, asset_ids=frames
        ),
    )
    run_frames_set(run=run, asset_ids=frames)
    job_start_for(
        run, kind="detect", created_by=created_by, enqueue=enqueue, parent=parent_job, parent_progress=parent_progress
    )
    return run


@transaction.atomic
def caption_run_start(
    *,
    project: Project,
    model_version: ModelVersion,
    pipeline: str,
    created_by: User | None,
    asset_ids: list[int],
    detection_run: DetectionRun | None = None,
    enqueue: bool = True,
    parent_job: Job | None = None,
    parent_progress: tuple[float, float] = (0.0, 0.0),
    frames_from: str = "",
) -> CaptionRun:
    _check_version(project, model_version, ModelRole.CAPTIONER)
    if pipeline not in CaptionPipeline.values:
        raise ApplicationError(f"Unknown pipeline {pipeline!r}.")
    if pipeline == CaptionPipeline.DETECTION:
        if detection_run is None or detection_run.project_id != project.id:
            raise ApplicationError("The detector → captioner pipeline needs a detection run of this project.")
        if detection_run.job is not None and detection_run.job.status != "succeeded":
            raise ApplicationError(f"Detection run #{detection_run.id} has not finished ({detection_run.job.status}).")
    frames = list(dict.fromkeys(asset_ids))
    if not frames:
        raise ApplicationError("Choose at least one frame.")
    run = CaptionRun.objects.create(
        project=project,
        model_version=model_version,
        pipeline=pipeline,
        frames_from=frames_from or "frames chosen at launch",
        detection_run=detection_run if pipeline == CaptionPipeline.DETECTION else None,
        prompt_version=CAPTION_PROMPT_VERSION,
        inputs_key=caption_inputs_key(
            project=project,
            model_version=model_version,
            pipeline=pipeline,
            detection_run=detection_run,
            asset_ids=frames,
        ),
    )
    run_frames_set(run=run, asset_ids=frames)
    if pipeline == CaptionPipeline.DETECTION:
        # One query in the database, whatever the run's size (its frames are rows by now).
        not_detected = run.frames.exclude(asset_id__in=detection_run.frames.values("asset_id")).count()
        if not_detected:
            raise ApplicationError(f"{not_detected} frame(s) are not in detection run #{detection_run.id}.")
    job_start_for(
        run, kind="caption", created_by=created_by, enqueue=enqueue, parent=parent_job, parent_progress=parent_progress
    )
    return run


def detection_answer(
    *, run: DetectionRun, asset_id: int, parsed, latency: float, error: str = "", label: str = ""
) -> Detection:
    """One frame's detection, not yet stored (`answers_store` stores a chunk of them at once)."""
    return Detection(
        run=run,
        asset_id=asset_id,
        names=parsed.names,
        unknown_names=parsed.unknown,
        raw_text=parsed.raw,
        flags=parsed.flags + (["backend_error"] if error else []),
        ok=parsed.ok and not error,
        error=error or parsed.error,
        model_version_label=label or run.model_version.name,
        latency_seconds=round(latency, 4),
    )


def caption_answer(
    *,
    run: CaptionRun,
    asset_id: int,
    parsed,
    characters_given: list[str],
    latency: float,
    error: str = "",
    label: str = "",
    extra_flags: list[str] | None = None,
) -> Caption:
    """One frame's caption, not yet stored (`answers_store` stores a chunk of them at once)."""
    return Caption(
        run=run,
        asset_id=asset_id,
        fields=parsed.caption,
        characters_given=characters_given,
        raw_text=parsed.raw,
        flags=parsed.flags + (extra_flags or []) + (["backend_error"] if error else []),
        ok=parsed.ok and not error,
        error=error or parsed.error,
        model_version_label=label or run.model_version.name,
        latency_seconds=round(latency, 4),
    )


def answers_store(*, answers: list[Detection] | list[Caption]) -> None:
    """A chunk's answers (of one run) in one INSERT, and the run's counts moved on by the new ones.
    A frame already answered keeps its first answer: a shard retried after its worker died, or a
    duplicate delivery, never writes a frame twice (the unique constraint decides; the counts are
    recounted exactly when the run ends)."""
    if not answers:
        return
    model, run = type(answers[0]), answers[0].run
    if any(answer.run_id != run.id for answer in answers):
        raise ValueError("answers_store takes one run's answers at a time")
    with transaction.atomic():
        stored = set(
            model.objects.filter(run_id=run.id, asset_id__in=[a.asset_id for a in answers]).values_list(
                "asset_id", flat=True
            )
        )
        new = [answer for answer in answers if answer.asset_id not in stored]
        model.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
        type(run).objects.filter(id=run.id).update(
            answered_count=F("answered_count") + len(new),
            failed_count=F("failed_count") + sum(not answer.ok for answer in new),
        )


def run_answers_recount(*, run: DetectionRun | CaptionRun) -> None:
    """The run's answer counts, counted (once, when it ends or loses answers)."""
    answers = run.detections if isinstance(run, DetectionRun) else run.captions
    counts = answers.aggregate(answered=Count("id"), failed=Count("id", filter=Q(ok=False)))
    type(run).objects.filter(id=run.id).update(answered_count=counts["answered"], failed_count=counts["failed"])
    run.answered_count, run.failed_count = counts["answered"], counts["failed"]


def answers_forget_backend_errors(*, run: DetectionRun | CaptionRun, rows) -> int:
    """Delete a run's detections or captions that hold no answer but a backend error (server
    down, timeout), so that a retried job asks for those frames again. Returns how many."""
    failed = [row.id for row in rows.only("id", "flags") if "backend_error" in row.flags]
    deleted, _ = rows.filter(id__in=failed).delete()
    if deleted:
        run_answers_recount(run=run)
    return deleted


def caption_run_health_refresh(*, run: CaptionRun, force: bool = False) -> dict:
    """The run's health summary, made again (and kept) only when its answers changed since, or
    when `force`d (the caption job, once its answers and token counts are all in). While the run
    is still going, a summary made earlier is kept as it is: the job makes it again when it ends,
    and a page watched during a million-frame run must not read every caption on each visit."""
    running = run.job is not None and not run.job.is_finished
    unusable = (run.health or {}).get("version") != HEALTH_SUMMARY_VERSION  # none yet, or of an older shape
    if force or unusable or (not running and not caption_run_health_current(run)):
        run.health = caption_run_health_summary(run)
        CaptionRun.objects.filter(id=run.id).update(health=run.health)
    return run.health


def caption_tokens_record(*, run: CaptionRun, counts: dict[int, int]) -> None:
    """Each caption's length in its captioner's tokens (caption id → count), for the health check;
    ids of other runs' captions are ignored."""
    own = set(run.captions.filter(id__in=list(counts)).values_list("id", flat=True))
    captions = [Caption(id=caption_id, tokens=tokens) for caption_id, tokens in counts.items() if caption_id in own]
    Caption.objects.bulk_update(captions, ["tokens"], batch_size=500)


def run_prompt_example_set(*, run: DetectionRun | CaptionRun, text: str) -> None:
    type(run).objects.filter(id=run.id, prompt_example="").update(prompt_example=text)
