"""Writes for the Label Studio round trip: push a frozen gold set, take webhooks, sync labels back.

Nothing here trusts what Label Studio sends unasked: a webhook only names annotation ids, which
are fetched again through the API; the periodic reconciliation pages through every task, so a
missed, duplicated or reordered webhook changes nothing in the end.
"""

import hmac
import json
import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from apps.captioning.models import Detection, DetectionRun
from apps.core.errors import ApplicationError
from apps.curation.models import GoldSet, GoldSetStatus
from apps.jobs.services import job_create
from apps.labeling.client import LabelStudioClient, LabelStudioUnavailable, RemoteAnnotation, prediction_errors
from apps.labeling.label_config import choices_result, label_config, names_from_result
from apps.labeling.links import file_link_url
from apps.labeling.models import (
    GoldLabel,
    GoldResolution,
    LabelingProject,
    LabelingStatus,
    LabelingTask,
    PendingAnnotation,
)
from apps.media.models import Asset
from apps.projects.models import Character

logger = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
WEBHOOK_ACTIONS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"}


def _no_progress(fraction: float, message: str) -> None:
    pass


# --- creating the Label Studio project --------------------------------------------------------


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
        missing = set(gold_set.items.values_list("asset_id", flat=True)) - set(detection_run.asset_ids)
        if missing:
            raise ApplicationError(f"Detection run #{detection_run.id} did not look at {len(missing)} gold frame(s).")
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
    labeling_project.push_job = job_create(
        kind="labeling_push",
        project=project,
        created_by=created_by,
        params={"labeling_project_id": labeling_project.id},
        enqueue=enqueue,
    )
    labeling_project.save(update_fields=["push_job", "updated_at"])
    return labeling_project


def labeling_push_retry(*, labeling_project: LabelingProject, created_by: User | None) -> LabelingProject:
    if labeling_project.push_job is not None and labeling_project.push_job.status in ("queued", "running"):
        raise ApplicationError("The push is already queued or running.")
    labeling_project.push_job = job_create(
        kind="labeling_push",
        project=labeling_project.project,
        created_by=created_by,
        params={"labeling_project_id": labeling_project.id},
    )
    labeling_project.save(update_fields=["push_job", "updated_at"])
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


def _record_fault(labeling_project: LabelingProject, exc: Exception) -> None:
    LabelingProject.objects.filter(id=labeling_project.id).update(
        sync_error=str(exc)[:2000], sync_error_at=timezone.now()
    )


def _record_tasks(labeling_project: LabelingProject, rows: list[LabelingTask]) -> None:
    LabelingTask.objects.bulk_create(rows, ignore_conflicts=True)


def labeling_push(
    *, labeling_project: LabelingProject, client: LabelStudioClient | None = None, progress: Progress = _no_progress
) -> dict:
    """Create the Label Studio project, its webhook and tasks (with pre-annotations).

    Resumable: every id Label Studio hands back is stored at once, and a retried push first
    adopts the tasks an interrupted push already created (matched by our asset id), so nothing
    is imported twice.
    """
    client = client or LabelStudioClient()
    LabelingProject.objects.filter(id=labeling_project.id).update(status=LabelingStatus.PUSHING)
    try:
        outcome = _push(labeling_project, client, progress)
    except LabelStudioUnavailable as exc:
        _record_fault(labeling_project, exc)
        LabelingProject.objects.filter(id=labeling_project.id).update(status=LabelingStatus.FAILED)
        raise
    except Exception:
        LabelingProject.objects.filter(id=labeling_project.id).update(status=LabelingStatus.FAILED)
        raise
    LabelingProject.objects.filter(id=labeling_project.id).update(
        status=LabelingStatus.READY, sync_error="", sync_error_at=None, images_signed_at=outcome.pop("signed_at")
    )
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
                LabelingTask(
                    labeling_project=labeling_project,
                    asset_id=asset_id,
                    ls_task_id=task_id,
                    is_control=asset_id in controls,
                    predicted_names=predicted.get(asset_id),
                )
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


def _adopt_existing_tasks(
    labeling_project: LabelingProject,
    client: LabelStudioClient,
    gold_asset_ids: set[int],
    controls: set[int],
    predicted: dict[int, list[str]],
) -> int:
    """Store tasks that exist in Label Studio but not here (an interrupted push created them)."""
    known = set(labeling_project.tasks.values_list("ls_task_id", flat=True))
    rows = []
    for task in client.tasks(project_id=labeling_project.ls_project_id):
        asset_id = task["data"].get("asset_id")
        if task["id"] in known or not isinstance(asset_id, int) or asset_id not in gold_asset_ids:
            continue
        rows.append(
            LabelingTask(
                labeling_project=labeling_project,
                asset_id=asset_id,
                ls_task_id=task["id"],
                is_control=asset_id in controls,
                predicted_names=predicted.get(asset_id),
            )
        )
    _record_tasks(labeling_project, rows)
    return len(rows)


# --- webhooks ---------------------------------------------------------------------------------


@dataclass
class WebhookOutcome:
    status: int
    detail: str
    annotation_ids: list[int] = field(default_factory=list)


def webhook_receive(*, labeling_project_id: int, secret: str, body: bytes) -> WebhookOutcome:
    """Authenticate, validate and remember which annotations changed; the sync fetches them."""
    labeling_project = LabelingProject.objects.filter(id=labeling_project_id).first()
    expected = labeling_project.webhook_secret if labeling_project else secrets.token_urlsafe(32)
    # Compared in constant time, and an unknown project costs the same as a wrong secret.
    if not secret or not hmac.compare_digest(secret.encode(), expected.encode()) or labeling_project is None:
        return WebhookOutcome(401, "Missing or wrong webhook secret.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return WebhookOutcome(400, "The body is not JSON.")
    if not isinstance(payload, dict) or payload.get("action") not in WEBHOOK_ACTIONS:
        return WebhookOutcome(400, f"Unknown action; expected one of {sorted(WEBHOOK_ACTIONS)}.")
    project_id = (payload.get("project") or {}).get("id") if isinstance(payload.get("project"), dict) else None
    if project_id is not None and project_id != labeling_project.ls_project_id:
        return WebhookOutcome(400, "The webhook names another Label Studio project.")
    if payload["action"] == "ANNOTATIONS_DELETED":
        annotations = payload.get("annotations")
    else:
        annotations = [payload.get("annotation")]
    if not isinstance(annotations, list) or not annotations:
        return WebhookOutcome(400, "No annotation in the payload.")
    ids = [entry.get("id") if isinstance(entry, dict) else None for entry in annotations]
    if not all(
        isinstance(annotation_id, int) and not isinstance(annotation_id, bool) and annotation_id > 0
        for annotation_id in ids
    ):
        return WebhookOutcome(400, "Annotation ids must be positive integers.")
    annotations_mark_pending(labeling_project=labeling_project, annotation_ids=ids)
    return WebhookOutcome(202, "queued", ids)


def annotations_mark_pending(*, labeling_project: LabelingProject, annotation_ids: list[int]) -> None:
    """One pending row per annotation however many webhooks name it; one sync queued per burst."""
    from apps.labeling.tasks import sync_pending

    with transaction.atomic():
        PendingAnnotation.objects.bulk_create(
            [PendingAnnotation(labeling_project=labeling_project, ls_annotation_id=i) for i in set(annotation_ids)],
            ignore_conflicts=True,
        )
        # A webhook arriving while a sync runs must be fetched again: newer content may follow.
        PendingAnnotation.objects.filter(labeling_project=labeling_project, ls_annotation_id__in=annotation_ids).update(
            received_at=timezone.now()
        )
        if LabelingProject.objects.filter(id=labeling_project.id, sync_queued=False).update(sync_queued=True):
            transaction.on_commit(lambda: sync_pending_enqueue(labeling_project.id, sync_pending))


def sync_pending_enqueue(labeling_project_id: int, task) -> None:
    try:
        task.apply_async(args=[labeling_project_id], queue="cpu")
    except Exception:  # noqa: BLE001 — the broker is down: the periodic reconciliation catches up
        logger.exception("Could not queue the label sync of labelling project %s", labeling_project_id)
        LabelingProject.objects.filter(id=labeling_project_id).update(sync_queued=False)


# --- syncing labels back ----------------------------------------------------------------------


class _LabelWriter:
    """Upserts GoldLabels from remote annotations; remembers users and tasks within one sync."""

    def __init__(self, labeling_project: LabelingProject, client: LabelStudioClient):
        self.labeling_project = labeling_project
        self.client = client
        self.tasks = {task.ls_task_id: task for task in labeling_project.tasks.all()}
        self.emails: dict[int, str] = {}
        self.users: dict[str, User | None] = {}
        self.counts = {"stored": 0, "unchanged": 0, "stale": 0, "foreign": 0, "deleted": 0}

    def _annotator(self, ls_user_id: int | None) -> tuple[str, User | None]:
        if ls_user_id is None:
            return "", None
        if ls_user_id not in self.emails:
            self.emails[ls_user_id] = self.client.user_email(ls_user_id)
        email = self.emails[ls_user_id]
        if email not in self.users:
            self.users[email] = User.objects.filter(email__iexact=email).order_by("id").first() if email else None
        return email, self.users[email]

    def _values(self, remote: RemoteAnnotation, task: LabelingTask) -> dict:
        email, annotator = self._annotator(remote.completed_by)
        return {
            "task": task,
            "asset_id": task.asset_id,
            "names": names_from_result(remote.result),
            "annotator": annotator,
            "ls_user_id": remote.completed_by,
            "ls_user_email": email,
            "ls_updated_at": remote.updated_at,
            "was_cancelled": remote.was_cancelled,
            "deleted": False,
        }

    @staticmethod
    def _unchanged(current: tuple, values: dict) -> bool:
        return current[:4] == (values["ls_updated_at"], values["names"], values["was_cancelled"], False)

    def _update_forward(self, annotation_id: int, values: dict) -> bool:
        """Only ever move forward in Label Studio's time: an older copy never overwrites a newer one."""
        labels = GoldLabel.objects.filter(labeling_project=self.labeling_project, ls_annotation_id=annotation_id)
        return bool(
            labels.filter(ls_updated_at__lte=values["ls_updated_at"]).update(**values, updated_at=timezone.now())
        )

    def write(self, remote: RemoteAnnotation) -> None:
        """One annotation (the webhook path)."""
        task = self.tasks.get(remote.task_id)
        if task is None:  # not one of our tasks (someone added tasks in Label Studio by hand)
            self.counts["foreign"] += 1
            return
        values = self._values(remote, task)
        labels = GoldLabel.objects.filter(labeling_project=self.labeling_project, ls_annotation_id=remote.id)
        current = labels.values_list("ls_updated_at", "names", "was_cancelled", "deleted").first()
        if current is not None and self._unchanged(current, values):
            self.counts["unchanged"] += 1
        elif self._update_forward(remote.id, values):
            self.counts["stored"] += 1
        elif current is not None:
            self.counts["stale"] += 1
        else:
            try:
                with transaction.atomic():
                    GoldLabel.objects.create(
                        labeling_project=self.labeling_project, ls_annotation_id=remote.id, **values
                    )
                self.counts["stored"] += 1
            except IntegrityError:  # a concurrent sync created it a moment ago
                self.counts["stored" if self._update_forward(remote.id, values) else "stale"] += 1

    def write_page(self, remotes: list[RemoteAnnotation], known: dict[int, tuple]) -> None:
        """Many annotations (the reconciliation): `known` holds what is stored, read once; new labels
        are inserted in one statement, changed ones updated one by one (rare once in sync)."""
        new = []
        for remote in remotes:
            task = self.tasks.get(remote.task_id)
            if task is None:
                self.counts["foreign"] += 1
                continue
            values = self._values(remote, task)
            current = known.get(remote.id)
            if current is None:
                new.append(GoldLabel(labeling_project=self.labeling_project, ls_annotation_id=remote.id, **values))
            elif self._unchanged(current, values):
                self.counts["unchanged"] += 1
            elif current[0] > remote.updated_at:
                self.counts["stale"] += 1
            elif self._update_forward(remote.id, values):
                self.counts["stored"] += 1
        # A webhook sync may insert the same annotation meanwhile: its copy is as fresh as ours.
        GoldLabel.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
        self.counts["stored"] += len(new)

    def known_labels(self) -> dict[int, tuple]:
        rows = GoldLabel.objects.filter(labeling_project=self.labeling_project).values_list(
            "ls_annotation_id", "ls_updated_at", "names", "was_cancelled", "deleted"
        )
        return {row[0]: row[1:] for row in rows}

    def mark_deleted(self, annotation_ids: set[int]) -> None:
        if annotation_ids:
            self.counts["deleted"] += GoldLabel.objects.filter(
                labeling_project=self.labeling_project, ls_annotation_id__in=annotation_ids, deleted=False
            ).update(deleted=True, updated_at=timezone.now())


def labels_sync_pending(*, labeling_project: LabelingProject, client: LabelStudioClient | None = None) -> dict:
    """Fetch every annotation a webhook named (the body is never trusted) and store it.

    A pending row is dropped only after its fetch was stored, and only if no newer webhook
    touched it meanwhile; if Label Studio is unavailable, the rows stay for the next try.
    """
    LabelingProject.objects.filter(id=labeling_project.id).update(sync_queued=False)
    client = client or LabelStudioClient()
    writer = _LabelWriter(labeling_project, client)
    pending = list(PendingAnnotation.objects.filter(labeling_project=labeling_project).order_by("ls_annotation_id"))
    try:
        for row in pending:
            remote = client.annotation(row.ls_annotation_id)
            if remote is None:
                writer.mark_deleted({row.ls_annotation_id})
            else:
                writer.write(remote)
            PendingAnnotation.objects.filter(id=row.id, received_at=row.received_at).delete()
    except LabelStudioUnavailable as exc:
        _record_fault(labeling_project, exc)
        PendingAnnotation.objects.filter(labeling_project=labeling_project).update(attempts=F("attempts") + 1)
        raise
    LabelingProject.objects.filter(id=labeling_project.id).update(
        last_synced_at=timezone.now(), sync_error="", sync_error_at=None
    )
    return {"fetched": len(pending), **writer.counts}


def labels_reconcile(
    *, labeling_project: LabelingProject, client: LabelStudioClient | None = None, progress: Progress = _no_progress
) -> dict:
    """Page through every task in Label Studio and make the GoldLabels match it exactly."""
    client = client or LabelStudioClient()
    if labeling_project.ls_project_id is None:
        raise ApplicationError("The gold set has not been pushed to Label Studio yet.")
    started = timezone.now()
    writer = _LabelWriter(labeling_project, client)
    total = max(len(writer.tasks), 1)
    seen: set[int] = set()
    try:
        known = writer.known_labels()
        page: list[RemoteAnnotation] = []
        for index, task in enumerate(client.tasks(project_id=labeling_project.ls_project_id), start=1):
            for remote in client.annotations_of(task):
                page.append(remote)
                seen.add(remote.id)
            if len(page) >= 500:
                writer.write_page(page, known)
                page = []
                progress(min(index / total, 1.0), f"{index} / {total} tasks checked")
        writer.write_page(page, known)
        stored = set(
            GoldLabel.objects.filter(labeling_project=labeling_project, deleted=False).values_list(
                "ls_annotation_id", flat=True
            )
        )
        writer.mark_deleted(stored - seen)
        relinked = _refresh_image_links(labeling_project, client)
    except LabelStudioUnavailable as exc:
        _record_fault(labeling_project, exc)
        raise
    # Webhooks received before this pass began are covered by it.
    PendingAnnotation.objects.filter(labeling_project=labeling_project, received_at__lt=started).delete()
    LabelingProject.objects.filter(id=labeling_project.id).update(
        last_synced_at=timezone.now(), sync_error="", sync_error_at=None
    )
    return {"tasks": len(writer.tasks), "annotations": len(seen), "relinked": relinked, **writer.counts}


def _refresh_image_links(labeling_project: LabelingProject, client: LabelStudioClient) -> int:
    """Re-sign the tasks' image links once half of their lifetime has passed."""
    half_life = timedelta(seconds=settings.LABELING_IMAGE_LINK_MAX_AGE_SECONDS / 2)
    signed_at = LabelingProject.objects.values_list("images_signed_at", flat=True).get(id=labeling_project.id)
    if signed_at is not None and timezone.now() - signed_at < half_life:
        return 0
    signed_at = timezone.now()
    count = 0
    for task in labeling_project.tasks.order_by("id"):
        client.task_update_data(
            task_id=task.ls_task_id, data={"image": file_link_url("asset", task.asset_id), "asset_id": task.asset_id}
        )
        count += 1
    LabelingProject.objects.filter(id=labeling_project.id).update(images_signed_at=signed_at)
    return count


def labeling_sync_start(*, labeling_project: LabelingProject, created_by: User | None, enqueue: bool = True):
    return job_create(
        kind="labeling_sync",
        project=labeling_project.project,
        created_by=created_by,
        params={"labeling_project_id": labeling_project.id},
        enqueue=enqueue,
    )


def labeling_reconcile_all() -> list[int]:
    """The beat's entry point: a sync job per ready project (a stuck push is retried instead)."""
    from apps.jobs.models import Job

    launched = []
    for labeling_project in LabelingProject.objects.select_related("project", "push_job"):
        active = Job.objects.filter(
            kind__in=["labeling_sync", "labeling_push"],
            project=labeling_project.project,
            status__in=["queued", "running"],
            params__labeling_project_id=labeling_project.id,
        ).exists()
        if active:
            continue
        if labeling_project.status == LabelingStatus.READY:
            launched.append(labeling_sync_start(labeling_project=labeling_project, created_by=None).id)
        elif labeling_project.status == LabelingStatus.FAILED and labeling_project.sync_error:
            # Label Studio was unavailable during the push: try again now that time has passed.
            launched.append(labeling_push_retry(labeling_project=labeling_project, created_by=None).push_job_id)
    return launched


# --- a lead's decisions -----------------------------------------------------------------------


def gold_resolution_set(
    *, labeling_project: LabelingProject, asset: Asset, names: list[str], resolved_by: User
) -> GoldResolution:
    roster = set(Character.objects.filter(project=labeling_project.project).values_list("name", flat=True))
    unknown = sorted(set(names) - roster)
    if unknown:
        raise ApplicationError(f"Not characters of this project: {', '.join(unknown)}")
    if not labeling_project.tasks.filter(asset=asset).exists():
        raise ApplicationError("That frame is not in this gold set.")
    resolution, _ = GoldResolution.objects.update_or_create(
        labeling_project=labeling_project,
        asset=asset,
        defaults={"names": sorted(set(names)), "resolved_by": resolved_by},
    )
    return resolution
