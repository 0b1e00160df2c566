"""Syncing labels back from Label Studio: the annotations webhooks named, and the full reconciliation.

Every annotation is stored, whoever gave it; whether it counts is decided when it is read
(selectors.labellers): only answers from a Label Studio account the app made for a labelling
member of the project do.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.jobs.models import Job
from apps.jobs.services import job_create
from apps.labeling.client import LabelStudioClient, LabelStudioUnavailable, RemoteAnnotation
from apps.labeling.label_config import names_from_result
from apps.labeling.links import file_link_url
from apps.labeling.models import (
    GoldLabel,
    LabelingProject,
    LabelingStatus,
    LabelingTask,
    LabelStudioAccount,
    PendingAnnotation,
)
from apps.labeling.services._common import Progress, data_changed, no_progress, record_fault
from apps.labeling.services.health import labelstudio_health_record
from apps.labeling.services.push import labeling_push_retry

# What is compared to decide whether a stored label is unchanged (see _LabelWriter._current).
_COMPARED = ("ls_updated_at", "names", "was_cancelled", "deleted", "ls_user_id", "ls_user_email", "annotator_id")


class _LabelWriter:
    """Upserts GoldLabels from remote annotations; remembers users and tasks within one sync."""

    def __init__(self, labeling_project: LabelingProject, client: LabelStudioClient):
        self.labeling_project = labeling_project
        self.client = client
        self.tasks = {task.ls_task_id: task for task in labeling_project.tasks.all()}
        self.emails: dict[int, str] = {}
        self.accounts: dict[int, LabelStudioAccount] = {
            account.ls_user_id: account for account in LabelStudioAccount.objects.select_related("user")
        }
        self.counts = {"stored": 0, "unchanged": 0, "stale": 0, "foreign": 0, "deleted": 0}

    def _annotator(self, ls_user_id: int | None) -> tuple[str, User | None]:
        """The Label Studio user's e-mail now, and the app user the app made that account for (if so).

        An e-mail alone maps nobody: only the account recorded when the app created it, and only
        while Label Studio still reports the e-mail it was made with.
        """
        if ls_user_id is None:
            return "", None
        if ls_user_id not in self.emails:
            self.emails[ls_user_id] = self.client.user_email(ls_user_id).lower()
        email = self.emails[ls_user_id]
        account = self.accounts.get(ls_user_id)
        user = account.user if account is not None and email and account.ls_email == email else None
        return email, user

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
        annotator = values["annotator"]
        return current == (
            values["ls_updated_at"],
            values["names"],
            values["was_cancelled"],
            False,
            values["ls_user_id"],
            values["ls_user_email"],
            annotator.id if annotator is not None else None,
        )

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
        current = labels.values_list(*_COMPARED).first()
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
            "ls_annotation_id", *_COMPARED
        )
        return {row[0]: row[1:] for row in rows}

    def mark_deleted(self, annotation_ids: set[int]) -> None:
        if annotation_ids:
            self.counts["deleted"] += GoldLabel.objects.filter(
                labeling_project=self.labeling_project, ls_annotation_id__in=annotation_ids, deleted=False
            ).update(deleted=True, updated_at=timezone.now())

    def changed(self) -> bool:
        return bool(self.counts["stored"] or self.counts["deleted"])


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
        record_fault(labeling_project, exc)
        PendingAnnotation.objects.filter(labeling_project=labeling_project).update(attempts=F("attempts") + 1)
        if writer.changed():
            data_changed(labeling_project)
        raise
    LabelingProject.objects.filter(id=labeling_project.id).update(
        last_synced_at=timezone.now(), sync_error="", sync_error_at=None
    )
    if writer.changed():
        data_changed(labeling_project)
    return {"fetched": len(pending), **writer.counts}


def labels_reconcile(
    *, labeling_project: LabelingProject, client: LabelStudioClient | None = None, progress: Progress = no_progress
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
        record_fault(labeling_project, exc)
        if writer.changed():
            data_changed(labeling_project)
        raise
    # Webhooks received before this pass began are covered by it.
    PendingAnnotation.objects.filter(labeling_project=labeling_project, received_at__lt=started).delete()
    LabelingProject.objects.filter(id=labeling_project.id).update(
        last_synced_at=timezone.now(), sync_error="", sync_error_at=None
    )
    if writer.changed():
        data_changed(labeling_project)
    labelstudio_health_record(up=True)
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
