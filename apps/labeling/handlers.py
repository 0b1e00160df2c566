"""Label Studio jobs: push a gold set's tasks, reconcile the labels (both on the cpu queue)."""

from typing import Any

from apps.jobs.kinds import id_params, job_kind
from apps.jobs.models import Job
from apps.jobs.runner import JobContext
from apps.labeling import services
from apps.labeling.models import LabelingProject


def _labeling_project(job: Job) -> LabelingProject:
    return LabelingProject.objects.select_related("project", "gold_set", "detection_run").get(
        id=job.params["labeling_project_id"], project=job.project
    )


@job_kind(
    name="labeling_push",
    label="Push gold set to Label Studio",
    queue="cpu",
    clean_params=id_params("labeling_project_id"),
    produces=("the labelling project", "labeling:detail", "labeling_project_id"),
)
def labeling_push(job: Job, ctx: JobContext) -> dict[str, Any]:
    labeling_project = _labeling_project(job)
    ctx.progress(0.0, "Creating the Label Studio project")
    outcome = services.labeling_push(labeling_project=labeling_project, progress=ctx.progress)
    ctx.log(
        f"Label Studio project #{outcome['ls_project_id']}: {outcome['tasks_imported']} tasks imported, "
        f"{outcome['tasks_adopted']} adopted from an earlier try, {outcome['control_tasks']} in the control slice"
    )
    return outcome


@job_kind(
    name="labeling_sync",
    label="Sync labels from Label Studio",
    queue="cpu",
    clean_params=id_params("labeling_project_id"),
    produces=("the labelling project", "labeling:detail", "labeling_project_id"),
    housekeeping=True,  # the beat's reconciliation starts one per project every few minutes
)
def labeling_sync(job: Job, ctx: JobContext) -> dict[str, Any]:
    labeling_project = _labeling_project(job)
    ctx.progress(0.0, "Reading every task from Label Studio")
    outcome = services.labels_reconcile(labeling_project=labeling_project, progress=ctx.progress)
    ctx.log(f"{outcome['annotations']} annotations checked: {outcome['stored']} stored, {outcome['deleted']} deleted")
    return outcome
