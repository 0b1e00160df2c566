from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Max, QuerySet
from django.http import Http404

from apps.core.errors import ApplicationError
from apps.jobs.kinds import JOB_KINDS, job_kind_get
from apps.jobs.models import Job, JobStatus
from apps.projects.models import Project
from apps.projects.selectors import project_list

# Ordering is an allow-list: a client never orders by an arbitrary column.
JOB_ORDERINGS = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "status": ("status", "-created_at", "-id"),
    "kind": ("kind", "-created_at", "-id"),
}


def job_list(
    *,
    user: User | AnonymousUser,
    project: Project | None = None,
    status: str | None = None,
    kind: str | None = None,
    ordering: str = "newest",
    shards: bool = True,
    housekeeping: bool = True,
) -> QuerySet[Job]:
    """Jobs the user may see; `shards=False` leaves out the shards of split runs (their run's job
    stands for them in lists); `housekeeping=False` the periodic jobs the beat started on its own
    (one a person launched stays)."""
    jobs = Job.objects.filter(project__in=project_list(user=user)).select_related("project", "created_by")
    if not shards:
        jobs = jobs.exclude(kind__in=[kind.name for kind in JOB_KINDS.values() if kind.shard])
    if not housekeeping:
        periodic = [kind.name for kind in JOB_KINDS.values() if kind.housekeeping]
        jobs = jobs.exclude(kind__in=periodic, created_by__isnull=True)
    if project is not None:
        jobs = jobs.filter(project=project)
    if status:
        jobs = jobs.filter(status=status)
    if kind:
        jobs = jobs.filter(kind=kind)
    return jobs.order_by(*JOB_ORDERINGS.get(ordering, JOB_ORDERINGS["newest"]))


def job_get(*, user: User | AnonymousUser, job_id: int) -> Job:
    job = job_list(user=user).filter(id=job_id).first()
    if job is None:
        raise Http404("No such job.")
    return job


def job_done_before(*, project: Project, kind: str, params: dict) -> Job | None:
    """The newest succeeded job of `kind` with these parameters, as the kind cleans them: for
    kinds whose parameters name all their inputs (e.g. a clustering's embedding run)."""
    try:
        cleaned = job_kind_get(kind).clean_params(dict(params))
    except (TypeError, ValueError, OverflowError, ApplicationError):
        return None  # starting it reports what is wrong
    jobs = Job.objects.filter(project=project, kind=kind, status=JobStatus.SUCCEEDED).order_by("-id")
    return next((job for job in jobs if job.params == cleaned), None)


def latest_jobs(*, project: Project, kinds: list[str]) -> dict[str, Job]:
    """The newest top-level job of each of these kinds in the project (two queries, whatever the
    number of jobs): what a stage is doing now, or how its last attempt ended."""
    newest = (
        Job.objects.filter(project=project, parent__isnull=True, kind__in=kinds)
        .values("kind")
        .annotate(newest=Max("id"))
        .order_by()
    )
    jobs = Job.objects.filter(id__in=[row["newest"] for row in newest])
    return {job.kind: job for job in jobs}
