"""Writes for jobs: create + enqueue, claim, progress, finish, cancel, sweep.

Delivery is at-least-once (acks_late, sweeper re-enqueues), execution is at-most-once per
attempt: a worker runs a job only after `job_claim` moved it from queued to running in one
conditional UPDATE, so a duplicate message is a no-op.
"""

import json
import logging
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Exists, F, Q, Sum, Value
from django.db.models.functions import Coalesce, Concat, Greatest
from django.utils import timezone

from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, InvalidStateError
from apps.jobs.kinds import JOB_KINDS, job_kind_get
from apps.jobs.models import FINISHED_STATUSES, Job, JobStatus
from apps.projects.models import Project

logger = logging.getLogger(__name__)


def log_line(text: str):
    """An expression that appends a timestamped line to Job.log inside an UPDATE."""
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
    return Concat(F("log"), Value(f"{stamp}  {text}\n"))


def job_log(*, job_id: int, text: str) -> None:
    Job.objects.filter(id=job_id).update(log=log_line(text[:1000]))


def job_launch(*, kind: str, project: Project, created_by: User, params: dict[str, Any] | None = None) -> Job:
    """A job started by a person from the generic launch form or API: launchable kinds only."""
    if not job_kind_get(kind).launchable:
        raise ApplicationError(f"{kind!r} jobs are started from their own page, not launched directly.", field="kind")
    return job_create(kind=kind, project=project, created_by=created_by, params=params)


@transaction.atomic
def job_create(
    *,
    kind: str,
    project: Project | None,
    created_by: User | None,
    params: dict[str, Any] | None = None,
    enqueue: bool = True,
    parent: Job | None = None,
    parent_progress: tuple[float, float] = (0.0, 0.0),
) -> Job:
    """Create a queued job and enqueue it once the transaction commits (no orphan messages).

    `enqueue=False` is for callers that run the job in their own process (management commands);
    the sweeper still sends such a job to a worker if it is never claimed. `parent` makes the job a
    stage of another job (see `job_wait_for_children`): its progress moves the parent's bar across
    `parent_progress` (from, to), and its end wakes the parent.
    """
    spec = job_kind_get(kind)
    try:
        cleaned = spec.clean_params(dict(params or {}))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ApplicationError(f"Bad parameters for a {spec.label} job: {exc}", field="params") from exc
    job = Job.objects.create(
        kind=kind,
        project=project,
        created_by=created_by,
        queue=spec.resolve_queue(),
        params=cleaned,
        max_attempts=settings.JOB_MAX_ATTEMPTS,
        message="Waiting for a worker",
        log=f"{timezone.now():%Y-%m-%d %H:%M:%S}  created by {created_by.username if created_by else 'system'}"
        + (f" as a stage of job #{parent.id}" if parent else "")
        + "\n",
        parent=parent,
        parent_progress_from=parent_progress[0],
        parent_progress_to=parent_progress[1],
    )
    if created_by is not None and parent is None:  # a person's launch; stages and shards are its parts
        audit_record(
            action=AuditAction.JOB_LAUNCHED, actor=created_by, project=project, target=f"job #{job.id}",
            summary=f"{spec.label} (job #{job.id})", detail={"kind": kind, "params": _params_shown(cleaned)},
        )  # fmt: skip
    if enqueue:
        transaction.on_commit(lambda: job_enqueue(job_id=job.id))
    return job


def _params_shown(params: dict[str, Any]) -> dict[str, Any]:
    """A launch's parameters as its audit entry keeps them: whole when short; an ingest of many
    files keeps only their count (every staged name is on the job itself)."""
    if len(json.dumps(params, default=str)) <= 2000:
        return params
    return {key: (f"{len(value)} items" if isinstance(value, list | dict) else value) for key, value in params.items()}


def row_param(row) -> str:
    """The parameter naming `row` in the parameters of a job that works on it: its model's name
    in snake case plus `_id` (a DetectionRun is `detection_run_id`); `id_params` cleans it."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(row).__name__).lower() + "_id"


@transaction.atomic
def job_start_for(
    row,
    *,
    kind: str,
    created_by: User | None,
    job_field: str = "job",
    params: dict[str, Any] | None = None,
    enqueue: bool = True,
    parent: Job | None = None,
    parent_progress: tuple[float, float] = (0.0, 0.0),
    also_save: tuple[str, ...] = (),
) -> Job:
    """Create the job of `kind` that works on `row` (a run, an export, …) and keep it on the row's
    `job_field`: what every stage's service does to launch its row's job. The job's parameters
    are the row's id (`row_param`) plus `params`; it belongs to the row's project. `also_save`:
    fields the caller set on the row since creating it, saved in the same UPDATE."""
    job = job_create(
        kind=kind,
        project=row.project,
        created_by=created_by,
        params={row_param(row): row.id, **(params or {})},
        enqueue=enqueue,
        parent=parent,
        parent_progress=parent_progress,
    )
    setattr(row, job_field, job)
    row.save(update_fields=[*also_save, job_field, "updated_at"])
    return job


def job_enqueue(*, job_id: int) -> bool:
    """Send the job's id to its queue. If the broker is down, leave the job queued: the sweeper
    sends it again later. Returns whether the message was sent."""
    from apps.jobs.tasks import run_job  # the Celery adapter imports this module: its task is looked up here

    job = Job.objects.filter(id=job_id, status=JobStatus.QUEUED).first()
    if job is None:
        return False
    spec = job_kind_get(job.kind)
    options: dict[str, Any] = {"queue": job.queue}
    if spec.soft_time_limit:
        options["soft_time_limit"] = spec.soft_time_limit
    if spec.time_limit:
        options["time_limit"] = spec.time_limit
    try:
        run_job.apply_async(args=[job.id], retry=False, **options)
    except Exception as exc:  # the broker's error types vary by transport
        logger.warning("Could not enqueue job %s: %s", job.id, exc)
        Job.objects.filter(id=job.id, status=JobStatus.QUEUED).update(
            message="Broker unreachable; will retry automatically",
            enqueued_at=timezone.now(),
            log=log_line(f"broker unreachable: {exc}"),
        )
        return False
    queued = Job.objects.filter(id=job.id, status=JobStatus.QUEUED)
    queued.update(enqueued_at=timezone.now(), enqueue_count=F("enqueue_count") + 1)
    queued.filter(message__startswith="Broker unreachable").update(message="Waiting for a worker")
    return True


def job_claim(*, job_id: int, worker: str = "") -> Job | None:
    """Move a queued job to running and count the attempt, or return None if another delivery
    already has it (or it was cancelled, finished, or deleted)."""
    now = timezone.now()
    claimed = Job.objects.filter(
        id=job_id, status=JobStatus.QUEUED, cancel_requested=False
    ).update(
        status=JobStatus.RUNNING,
        attempts=F("attempts") + 1,
        heartbeat_at=now,
        started_at=Coalesce(F("started_at"), Value(now)),  # its first start: the ETA counts from there
        worker=worker[:200],
        message="Started",
        error="",
        traceback="",
        log=log_line(f"started on {worker or 'a worker'}"),
    )
    if not claimed:
        return None
    return Job.objects.get(id=job_id)


class JobSuperseded(Exception):
    """This attempt no longer owns the job (the sweeper re-queued it, or it was cancelled while the
    worker was unreachable): stop without writing anything more."""


def _own(job_id: int, attempt: int | None):
    """The running job, as long as `attempt` is still the current one (None: any attempt)."""
    rows = Job.objects.filter(id=job_id, status=JobStatus.RUNNING)
    return rows if attempt is None else rows.filter(attempts=attempt)


def job_heartbeat(*, job_id: int, attempt: int | None = None) -> bool:
    """Refresh the heartbeat; returns whether a cancel was requested. Raises JobSuperseded."""
    if not _own(job_id, attempt).update(heartbeat_at=timezone.now()):
        raise JobSuperseded()
    return bool(Job.objects.filter(id=job_id, cancel_requested=True).exists())


def job_report_progress(*, job_id: int, progress: float, message: str = "", attempt: int | None = None) -> bool:
    """Record progress (clamped to 0–1) and a heartbeat; returns whether a cancel was requested.
    Raises JobSuperseded when this attempt no longer owns the job."""
    progress = min(1.0, max(0.0, float(progress)))
    fields: dict[str, Any] = {"progress": progress, "heartbeat_at": timezone.now()}
    if message:
        fields["message"] = message[:500]
    if not _own(job_id, attempt).update(**fields):
        raise JobSuperseded()
    return bool(Job.objects.filter(id=job_id, cancel_requested=True).exists())


def job_owned(*, job_id: int, attempt: int | None) -> bool:
    """Whether `attempt` still owns the running job: clean-up that another attempt may still need
    (staged uploads, temporary files) is only done by the owner."""
    return _own(job_id, attempt).exists()


def job_report_stage_progress(*, parent_id: int, span: tuple[float, float], progress: float, message: str) -> None:
    """A stage's progress moves its waiting parent's bar across the stage's span, never backwards
    (stages of one step may report in turns)."""
    start, end = span
    at = start + (end - start) * min(1.0, max(0.0, float(progress)))
    Job.objects.filter(id=parent_id, status=JobStatus.WAITING).update(
        progress=Greatest(F("progress"), Value(min(1.0, max(0.0, at)))), message=message[:500]
    )


@transaction.atomic
def job_shards_start(*, parent: Job, kind: str, params: list[dict[str, Any]], sizes: list[int]) -> list[Job]:
    """Split the parent's work into shards, a child job of `kind` each (`params[i]`), all queued at
    once for whichever workers take them; the parent then waits for them (`ctx.wait_for_stages`).
    Each shard's share of the parent's bar is its size's share of the whole. All or none are
    created: a parent retried after dying here finds either every shard or none."""
    if not job_kind_get(kind).shard:
        raise ValueError(f"{kind!r} is not a shard kind.")
    total, start, shards = max(sum(sizes), 1), 0, []
    for shard_params, size in zip(params, sizes, strict=True):
        span = (start / total, (start + size) / total)
        shards.append(
            job_create(
                kind=kind,
                project=parent.project,
                created_by=parent.created_by,
                params=shard_params,
                parent=parent,
                parent_progress=span,
            )
        )
        start += size
    job_log(job_id=parent.id, text=f"split into {len(shards)} shards")
    return shards


def job_report_shards_progress(*, parent_id: int) -> None:
    """A shard reported progress: its waiting parent's bar is the sum of its shards' shares done,
    passed on to the parent's own parent if it is a stage of one."""
    shards = Job.objects.filter(parent_id=parent_id).aggregate(
        done=Sum(F("progress") * (F("parent_progress_to") - F("parent_progress_from"))),
        ended=Count("id", filter=Q(status__in=FINISHED_STATUSES)),
        count=Count("id"),
    )
    progress = min(1.0, max(0.0, shards["done"] or 0.0))
    message = f"{shards['ended']} of {shards['count']} shards done"
    Job.objects.filter(id=parent_id, status=JobStatus.WAITING).update(
        progress=Greatest(F("progress"), Value(progress)), message=message
    )
    parent = Job.objects.filter(id=parent_id).values("parent_id", "parent_progress_from", "parent_progress_to").first()
    if parent and parent["parent_id"] is not None:
        span = (parent["parent_progress_from"], parent["parent_progress_to"])
        job_report_stage_progress(parent_id=parent["parent_id"], span=span, progress=progress, message=message)


def job_mark_waiting(*, job_id: int, attempt: int | None, progress: float, message: str) -> bool:
    """The parent's handler started (or found) its next stages and returns its worker: it sleeps
    until the last child ends (`_wake_parent`). Each wake is a new claim, so each step of the parent
    gets its own attempts: a stage's worker dying is the stage's business, not the parent's."""
    updated = (
        _own(job_id, attempt)
        .filter(cancel_requested=False)
        .update(
            status=JobStatus.WAITING,
            progress=min(1.0, max(0.0, progress)),
            message=message[:500],
            heartbeat_at=timezone.now(),
            max_attempts=F("attempts") + settings.JOB_MAX_ATTEMPTS,
            log=log_line(f"waiting: {message[:200]}"),
        )
    )
    if not updated:  # a cancel arrived while it started its stages (a queued parent is never claimed)
        return job_mark_cancelled(job_id=job_id, attempt=attempt)
    _wake_parent(job_id)  # the children may all have ended already
    return True


def _wake_parent(parent_id: int) -> bool:
    """Queue a waiting parent again once none of its children is still to run."""
    unfinished = Job.objects.filter(parent_id=parent_id).exclude(status__in=FINISHED_STATUSES)
    woken = (
        Job.objects.filter(id=parent_id, status=JobStatus.WAITING)
        .exclude(Exists(unfinished))
        .update(
            status=JobStatus.QUEUED,
            message="Its stages have ended; waiting for a worker",
            enqueued_at=None,
            log=log_line("stages ended; queued again"),
        )
    )
    if woken:
        job_enqueue(job_id=parent_id)
    return bool(woken)


def _finish(job_id: int, status: JobStatus, attempt: int | None, **fields: Any) -> bool:
    note = f"{status}" + (f": {fields['error']}" if fields.get("error") else "")
    updated = _own(job_id, attempt).update(
        status=status, finished_at=timezone.now(), heartbeat_at=timezone.now(), log=log_line(note), **fields
    )
    if updated:
        _after_end(job_id)
    return bool(updated)


def _after_end(job_id: int) -> None:
    """A job has just ended, by its worker, a cancel or the sweeper: wake its parent (if this was
    the last running stage), stop its stages (if it was a parent), and run its kind's clean-up."""
    job = Job.objects.filter(id=job_id).first()
    if job is None:
        return
    spec = JOB_KINDS.get(job.kind)
    cleanup = spec.cleanup if spec else None
    if cleanup is not None:
        try:
            cleanup(job)
        except Exception:  # the job's outcome is written; a failed clean-up is only worth a log line
            logger.exception("Clean-up after job %s failed", job_id)
    if job.parent_id is not None:
        _wake_parent(job.parent_id)
    for child in Job.objects.filter(parent_id=job_id).exclude(status__in=FINISHED_STATUSES):
        try:
            job_cancel(job=child)
        except InvalidStateError:
            pass  # it ended meanwhile


def job_mark_succeeded(*, job_id: int, result: dict[str, Any], attempt: int | None = None) -> bool:
    return _finish(job_id, JobStatus.SUCCEEDED, attempt, progress=1.0, result=result, message="Done")


def job_mark_failed(*, job_id: int, error: str, traceback: str = "", attempt: int | None = None) -> bool:
    return _finish(job_id, JobStatus.FAILED, attempt, error=error, traceback=traceback, message="Failed")


def job_mark_cancelled(*, job_id: int, result: dict[str, Any] | None = None, attempt: int | None = None) -> bool:
    return _finish(job_id, JobStatus.CANCELLED, attempt, result=result or {}, message="Cancelled by a lead")


def job_cancel(*, job: Job, cancelled_by: User | None = None) -> Job:
    """Cancel: a queued job ends at once; a running one stops at its next progress report.
    `cancelled_by`: the lead who asked (the audit log names them); None for a cascade to stages.

    Conditional updates, not read-modify-write: a worker finishing at the same moment keeps its
    final status (SQLite has no row locks to rely on)."""
    now = timezone.now()
    asked_before = Job.objects.filter(id=job.id, cancel_requested=True).exists()
    queued = Job.objects.filter(id=job.id, status=JobStatus.QUEUED).update(
        cancel_requested=True,
        status=JobStatus.CANCELLED,
        finished_at=now,
        message="Cancelled before it started",
        log=log_line("cancelled before it started"),
    )
    running = queued or Job.objects.filter(id=job.id, status=JobStatus.RUNNING).update(
        cancel_requested=True,
        message="Cancel requested; stopping at the next step",
        log=log_line("cancel requested"),
    )
    # A waiting parent holds no worker: it ends at once, and the cancel goes on to its running stage.
    waiting = (queued or running) or Job.objects.filter(id=job.id, status=JobStatus.WAITING).update(
        cancel_requested=True,
        status=JobStatus.CANCELLED,
        finished_at=now,
        message="Cancelled by a lead",
        log=log_line("cancelled while its stages ran"),
    )
    if (queued or running or waiting) and cancelled_by is not None and not asked_before:
        # Written as soon as the cancel took (a second click on a job already stopping is none).
        when = "before it started" if queued else "while its stages ran" if waiting and not running else "while it ran"
        audit_record(
            action=AuditAction.JOB_CANCELLED, actor=cancelled_by, project=job.project, target=f"job #{job.id}",
            summary=f"{job.kind_label} (job #{job.id}), {when}",
        )  # fmt: skip
    if queued or waiting:
        _after_end(job.id)
    job.refresh_from_db()
    if not (queued or running or waiting):
        raise InvalidStateError(f"The job has already {job.status}.")
    return job


def jobs_sweep(
    *,
    stale_after: float | None = None,
    reenqueue_after: float | None = None,
    now=None,
) -> dict[str, list[int]]:
    """Repair jobs that the broker or a worker lost.

    - running, heartbeat older than `stale_after`: the worker died (SIGKILL, OOM, lost host).
      Re-queue it while attempts remain, otherwise fail it with the reason.
    - queued, last enqueued longer than `reenqueue_after` ago: the message may never have
      reached the broker (down at enqueue) or was lost; send it again (duplicates are no-ops).
    - waiting, with every stage ended: the wake-up was lost; queue the parent again.
    """
    now = now or timezone.now()
    stale_after = settings.JOB_STALE_AFTER_SECONDS if stale_after is None else stale_after
    reenqueue_after = settings.JOB_REENQUEUE_AFTER_SECONDS if reenqueue_after is None else reenqueue_after
    outcome: dict[str, list[int]] = {"requeued": [], "failed": [], "cancelled": [], "reenqueued": [], "woken": []}

    stale_cutoff = now - timedelta(seconds=stale_after)
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale_cutoff):
        last_seen = job.heartbeat_at.isoformat(timespec="seconds")
        if job.cancel_requested:
            if Job.objects.filter(id=job.id, status=JobStatus.RUNNING).update(
                status=JobStatus.CANCELLED,
                finished_at=now,
                message="Cancelled (worker stopped)",
                log=log_line("cancelled: the worker stopped before it could acknowledge the cancel"),
            ):
                outcome["cancelled"].append(job.id)
                _after_end(job.id)
        elif job.attempts < job.max_attempts:
            requeued = Job.objects.filter(id=job.id, status=JobStatus.RUNNING, heartbeat_at=job.heartbeat_at).update(
                status=JobStatus.QUEUED,
                message=f"Worker lost (no heartbeat since {last_seen}); retrying, "
                f"attempt {job.attempts + 1} of {job.max_attempts}",
                log=log_line(f"worker lost (no heartbeat since {last_seen}); re-queued"),
            )
            if requeued:
                outcome["requeued"].append(job.id)
                job_enqueue(job_id=job.id)
        else:
            failed = Job.objects.filter(id=job.id, status=JobStatus.RUNNING, heartbeat_at=job.heartbeat_at).update(
                status=JobStatus.FAILED,
                finished_at=now,
                message="Failed",
                error=f"The worker stopped responding (no heartbeat since {last_seen}) "
                f"after {job.attempts} of {job.max_attempts} attempts.",
                log=log_line(f"worker lost (no heartbeat since {last_seen}); attempts used up, failed"),
            )
            if failed:
                outcome["failed"].append(job.id)
                _after_end(job.id)

    # A parent whose last stage ended while the wake-up was lost (its worker died between the two
    # writes) is woken here.
    for parent_id in Job.objects.filter(status=JobStatus.WAITING).values_list("id", flat=True):
        if _wake_parent(parent_id):
            outcome["woken"].append(parent_id)

    # A job still queued long after its message was sent may have lost it (broker restarted without
    # persistence) — or may just be waiting behind a long queue. Re-send with exponential backoff
    # (1×, 2×, 4×… the interval, at most 64×): a lost message is replaced soon, a long queue is not
    # flooded with duplicates (each is a no-op, but costs a GPU worker a process restart).
    reenqueue_cutoff = now - timedelta(seconds=reenqueue_after)
    for job_id, enqueued_at, count in Job.objects.filter(
        status=JobStatus.QUEUED, enqueued_at__lt=reenqueue_cutoff
    ).values_list("id", "enqueued_at", "enqueue_count"):
        wait = timedelta(seconds=reenqueue_after * 2 ** min(max(count - 1, 0), 6))
        if enqueued_at < now - wait and job_enqueue(job_id=job_id):
            outcome["reenqueued"].append(job_id)
    for job_id in Job.objects.filter(
        status=JobStatus.QUEUED, enqueued_at__isnull=True, created_at__lt=reenqueue_cutoff
    ).values_list("id", flat=True):
        if job_enqueue(job_id=job_id):
            outcome["reenqueued"].append(job_id)
    return outcome
