"""A job's work split into shards: child jobs, one per span of its items, that any number of
workers take at once (Celery queues them like any job; the sweeper re-queues one whose worker
died). The parent job sleeps (`waiting`) until every shard has ended, then sums them up.

A kind that shards registers two kinds: the whole (which calls `shards_or_whole`) and its shard
(`shard=True`, parameters cleaned by `apps.jobs.kinds.shard_params`), whose handler does one
span `(start, stop)` and must be idempotent per item: a shard retried after its worker died
finds what it stored already and skips it.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings

from apps.core.errors import ApplicationError
from apps.jobs.models import FINISHED_STATUSES, Job, JobStatus
from apps.jobs.runner import JobCancelled, JobContext
from apps.jobs.services import job_shards_start

Span = tuple[int, int]


def shard_spans(total: int, size: int) -> list[Span]:
    """[start, stop) spans of at most `size` items covering 0 … total."""
    return [(start, min(start + size, total)) for start in range(0, total, size)]


def job_span(job: Job) -> Span:
    """The span a shard job covers."""
    return job.params["start"], job.params["stop"]


def shards_or_whole(
    job: Job,
    ctx: JobContext,
    *,
    total: int,
    shard_kind: str,
    params_for: Callable[[int, int], dict[str, Any]],
    size: int | None = None,
    what: str = "frames",
) -> Span | None:
    """Work of more than `size` items (RUN_SHARD_FRAMES) is split into shards, one job of
    `shard_kind` per span, with `params_for(start, stop)` as its parameters; this job waits for
    them, then (woken when the last one ended) returns None for its caller to sum up. Smaller
    work is done by the job itself: its whole span is returned.

    A shard that was cancelled cancels the whole; one that failed fails it, naming the shard."""
    size = size or settings.RUN_SHARD_FRAMES
    if total <= size:
        return (0, total)
    shards = job.children.filter(kind=shard_kind)
    if not shards.exists():
        spans = shard_spans(total, size)
        job_shards_start(
            parent=job,
            kind=shard_kind,
            params=[params_for(start, stop) for start, stop in spans],
            sizes=[stop - start for start, stop in spans],
        )
    if shards.exclude(status__in=FINISHED_STATUSES).exists():
        ctx.wait_for_stages(job.progress, f"{shards.count()} shards of {size} {what} queued")
    if shards.filter(status=JobStatus.CANCELLED).exists():
        raise JobCancelled()
    failed = shards.exclude(status=JobStatus.SUCCEEDED).order_by("id").first()
    if failed is not None:
        start, stop = job_span(failed)
        raise ApplicationError(
            f"Shard job #{failed.id} ({what} {start + 1}–{stop}) {failed.status}: {failed.error or failed.message}"
        )
    ctx.log(f"all {shards.count()} shards done")
    return None
