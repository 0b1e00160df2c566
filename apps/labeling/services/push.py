"""Creating the Label Studio project of a frozen gold set: project, webhook, tasks with pre-annotations."""

import random
import secrets

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.captioning.models import Detection, DetectionRun
from apps.core.errors import ApplicationError
from apps.curation.models import GoldSet, GoldSetStatus
from apps.jobs.services import job_start_for
from apps.labeling.client import LabelStudioClient, LabelStudioUnavailable, prediction_errors, project_marker
from apps.labeling.label_config import choices_result, label_config
from apps.labeling.links import file_link_url
from apps.labeling.models import LabelingProject, LabelingStatus, LabelingTask
from apps.labeling.services._common import Progress, data_changed, no_progress, record_fault
from apps.labeling.services.health import labelstudio_health_record
from apps.projects.models import Character


@transaction.atomic
def labeling_project_start(
    *,
    gold_set: GoldSet,
    created_by: User | None,
    detection_run: DetectionRun | None = None,
    control_fraction: float = 0.1,
    seed: int = 0,
    enqueue: bool = True,
) -> LabelingProject:
    """Record the labelling project and queue the push of its tasks to Label Studio."""
    project = gold_set.project
    if gold_set.status != GoldSetStatus.FROZEN:
        raise ApplicationError(f"{gold_set} is a draft: freeze it before labelling, so the frames cannot change.")
    if LabelingProject.objects.filter(gold_set=gold_set).exists():
        raise ApplicationError(f"{gold_set} already has a Label Studio project.")
    if not Character.objects.filter(project=project).exists():
        raise ApplicationError("The project has no characters: add the roster before labelling.")
    if not 0.0 <= control_fraction <= 0.9:
        raise ApplicationError("The control slice must be between 0 and 90% of the frames.", field="control_fraction")
    model_version = ""
    if detection_run is not None:
        if detection_run.project_id != project.id:
            raise ApplicationError("That detection run belongs to another project.")
        if detection_run.job is not None and detection_run.job.status != "succeeded":
            raise ApplicationError(f"Detection run #{detection_run.id} has not finished ({detection_run.job.status}).")
        gold_frames = gold_set.items.values_list("asset_id", flat=True)
        missing = gold_frames.count() - detection_run.frames.filter(asset_id__in=gold_frames).count()
        if missing:
            raise ApplicationError(f"Detection run #{detection_run.id} did not look at {missing} gold frame(s).")
        # The label its detections carry (model name, plus the adapter of an SFT'd detector).
        labels = detection_run.detections.values_list("model_version_label", flat=True)
        model_version = labels.first() or detection_run.model_version.name
    labeling_project = LabelingProject.objects.create(
        project=project,
        gold_set=gold_set,
        detection_run=detection_run,
        prediction_model_version=model_version,
        control_fraction=control_fraction,
        seed=seed,
        webhook_secret=secrets.token_urlsafe(32),
        created_by=created_by,
    )
    job_start_for(labeling_project, kind="labeling_push", created_by=created_by, job_field="push_job", enqueue=enqueue)
    return labeling_project


def labeling_push_retry(*, labeling_project: LabelingProject, created_by: User | None) -> LabelingProject:
    if labeling_project.push_job is not None and labeling_project.push_job.status in ("queued", "running"):
        raise ApplicationError("The push is already queued or running.")
    job_start_for(labeling_project, kind="labeling_push", created_by=created_by, job_field="push_job")
    return labeling_project


def control_asset_ids(asset_ids: list[int], fraction: float, seed: int) -> set[int]:
    """The seeded control slice: the same frames on every retry of a push."""
    ordered = sorted(asset_ids)
    return set(random.Random(seed).sample(ordered, round(len(ordered) * fraction)))


def _roster(project) -> list[tuple[str, str]]:
    roster = []
    for character in Character.objects.filter(project=project).prefetch_related("references"):
        reference = next(iter(character.references.all()), None)
        roster.append((character.name, file_link_url("reference", reference.id, "thumb") if reference else ""))
    return sorted(roster, key=lambda entry: entry[0].casefold())


def _record_tasks(labeling_project: LabelingProject, rows: list[LabelingTask]) -> None:
    if rows:
        LabelingTask.objects.bulk_create(rows, ignore_conflicts=True)
        data_changed(labeling_project)


def labeling_push(
    *, labeling_project: LabelingProject, client: LabelStudioClient | None = None, progress: Progress = no_progress
) -> dict:
    """Create the Label Studio project, its webhook and tasks (with pre-annotations).

    Resumable and never doubled: every id Label Studio hands back is stored at once; a create whose
    answer was lost (timeout, dropped connection, 5xx) is looked for before it is sent again — the
    project by the marker in its description, the webhook by its URL, tasks by our asset id — and a
    retried push first adopts the tasks an interrupted one created.
    """
    client = client or LabelStudioClient()
    LabelingProject.objects.filter(id=labeling_project.id).update(status=LabelingStatus.PUSHING)
    try:
        outcome = _push(labeling_project, client, progress)
    except LabelStudioUnavailable as exc:
        record_fault(labeling_project, exc)
        LabelingProject.objects.filter(id=labeling_project.id).update(status=LabelingStatus.FAILED)
        raise
    except Exception:
        LabelingProject.objects.filter(id=labeling_project.id).update(status=LabelingStatus.FAILED)
        raise
    LabelingProject.objects.filter(id=labeling_project.id).update(
        status=LabelingStatus.READY, sync_error="", sync_error_at=None, images_signed_at=outcome.pop("signed_at")
    )
    data_changed(labeling_project)
    labelstudio_health_record(up=True)
    return outcome


def _push(labeling_project: LabelingProject, client: LabelStudioClient, progress: Progress) -> dict:
    gold_set = labeling_project.gold_set
    config = label_config(_roster(labeling_project.project))
    if labeling_project.ls_project_id is None:
        labeling_project.ls_project_id = client.project_create(
            title=f"{labeling_project.project.name} · gold v{gold_set.version}",
            label_config=config,
            description=f"VIVECaption gold set v{gold_set.version} of {labeling_project.project.name}: "
            "tick every character in the frame.",
            marker=project_marker(str(labeling_project.ls_key)),
        )
        labeling_project.save(update_fields=["ls_project_id", "updated_at"])
    if labeling_project.ls_webhook_id is None:
        labeling_project.ls_webhook_id = client.webhook_create(
            project_id=labeling_project.ls_project_id,
            url=settings.LABELING_WEBHOOK_BASE_URL.rstrip("/")
            + reverse("labeling:webhook", kwargs={"labeling_project_id": labeling_project.id}),
            secret=labeling_project.webhook_secret,
        )
        labeling_project.save(update_fields=["ls_webhook_id", "updated_at"])

    gold_asset_ids = list(gold_set.items.order_by("asset_id").values_list("asset_id", flat=True))
    controls = control_asset_ids(gold_asset_ids, labeling_project.control_fraction, labeling_project.seed)
    predicted = _predicted_names(labeling_project.detection_run, gold_asset_ids)
    scores = _prediction_scores(labeling_project.detection_run, gold_asset_ids)
    adopted = _adopt_existing_tasks(labeling_project, client, set(gold_asset_ids), controls, predicted)
    done = set(labeling_project.tasks.values_list("asset_id", flat=True))
    todo = [asset_id for asset_id in gold_asset_ids if asset_id not in done]
    signed_at = timezone.now()
    batch_size = settings.LABELING_TASK_BATCH_SIZE
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        payloads = [
            _task_payload(labeling_project, asset_id, asset_id in controls, predicted, scores, config)
            for asset_id in batch
        ]
        task_ids = client.tasks_import(project_id=labeling_project.ls_project_id, tasks=payloads)
        if len(task_ids) != len(batch):
            raise ApplicationError(f"Label Studio created {len(task_ids)} tasks for {len(batch)} frames.")
        _record_tasks(
            labeling_project,
            [
                _task_row(labeling_project, asset_id, task_id, controls, predicted)
                for asset_id, task_id in zip(batch, task_ids, strict=True)
            ],
        )
        progress((start + len(batch)) / len(todo), f"{start + len(batch)} / {len(todo)} tasks imported")
    pre_annotated = sum(1 for asset_id in gold_asset_ids if asset_id not in controls and asset_id in predicted)
    if labeling_project.prediction_model_version and pre_annotated:
        # Label Studio accepts a model_version only once predictions of that version exist.
        client.project_set_model_version(
            project_id=labeling_project.ls_project_id, model_version=labeling_project.prediction_model_version
        )
    return {
        "ls_project_id": labeling_project.ls_project_id,
        "tasks_imported": len(todo),
        "tasks_adopted": adopted,
        "control_tasks": len(controls),
        "pre_annotated": pre_annotated,
        "signed_at": signed_at,
    }


def _predicted_names(detection_run: DetectionRun | None, asset_ids: list[int]) -> dict[int, list[str]]:
    """What the detector said per frame; frames whose answer could not be parsed have none."""
    if detection_run is None:
        return {}
    rows = Detection.objects.filter(run=detection_run, asset_id__in=asset_ids, ok=True).values_list("asset_id", "names")
    return {asset_id: sorted(names) for asset_id, names in rows}


def _prediction_scores(detection_run: DetectionRun | None, asset_ids: list[int]) -> dict[int, float]:
    """The detector gives no calibrated confidence: 1.0 for a clean answer, 0.5 for one that needed
    repair (code fence, prose, truncation, names off the roster). Label Studio can sort by it, so
    doubtful frames are reviewed first."""
    if detection_run is None:
        return {}
    rows = Detection.objects.filter(run=detection_run, asset_id__in=asset_ids, ok=True)
    return {
        asset_id: 0.5 if flags or unknown else 1.0
        for asset_id, flags, unknown in rows.values_list("asset_id", "flags", "unknown_names")
    }


def _task_payload(
    labeling_project: LabelingProject,
    asset_id: int,
    is_control: bool,
    predicted: dict[int, list[str]],
    scores: dict[int, float],
    config: str,
) -> dict:
    task: dict = {"data": {"image": file_link_url("asset", asset_id), "asset_id": asset_id}}
    if not is_control and asset_id in predicted:
        prediction = {
            "model_version": labeling_project.prediction_model_version,
            "score": scores.get(asset_id, 1.0),
            "result": choices_result(predicted[asset_id]),
        }
        errors = prediction_errors(config, prediction)
        if errors:  # Label Studio would accept it with 201 and silently drop it
            raise ApplicationError(f"Invalid pre-annotation for frame {asset_id}: {'; '.join(errors)}")
        task["predictions"] = [prediction]
    return task


def _task_row(
    labeling_project: LabelingProject, asset_id: int, task_id: int, controls: set[int], predicted: dict[int, list[str]]
) -> LabelingTask:
    """The row for one task Label Studio holds, whether this push created it or a lost one did."""
    return LabelingTask(
        labeling_project=labeling_project,
        asset_id=asset_id,
        ls_task_id=task_id,
        is_control=asset_id in controls,
        predicted_names=predicted.get(asset_id),
    )


def _adopt_existing_tasks(
    labeling_project: LabelingProject,
    client: LabelStudioClient,
    gold_asset_ids: set[int],
    controls: set[int],
    predicted: dict[int, list[str]],
) -> int:
    """Store tasks that exist in Label Studio but not here (an interrupted push created them)."""
    known_assets = set(labeling_project.tasks.values_list("asset_id", flat=True))
    rows = [
        _task_row(labeling_project, asset_id, task_id, controls, predicted)
        for asset_id, task_id in client.task_ids_by_asset(project_id=labeling_project.ls_project_id).items()
        if asset_id in gold_asset_ids and asset_id not in known_assets
    ]
    _record_tasks(labeling_project, rows)
    return len(rows)
