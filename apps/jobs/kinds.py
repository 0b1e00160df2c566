"""The registry of job kinds: what runs a kind, on which queue, with which parameters.

Each app registers its kinds with `@job_kind(...)` in its `handlers.py`; dispatch, the dashboard
and the API read this registry instead of branching on names.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

from apps.core.errors import ApplicationError

if TYPE_CHECKING:  # typing only: models and the runner import this module
    from apps.jobs.models import Job
    from apps.jobs.runner import JobContext

JobHandler = Callable[["Job", "JobContext"], dict[str, Any]]


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    queue: str | Callable[[], str]  # a callable decides at launch (e.g. gpu only where a GPU worker runs)
    handler: JobHandler
    clean_params: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda params: dict(params))
    soft_time_limit: int | None = None
    time_limit: int | None = None
    # Only launchable kinds may be started from the generic launch form / jobs API; the others are
    # started by their own services, which validate what their parameters point at.
    launchable: bool = False
    # Clean-up once the job has ended — run by whoever ended it: the attempt that still owned it,
    # a cancel, or the sweeper giving up on a dead worker; never by a superseded attempt, whose
    # successor may still need what would be cleaned up (e.g. an ingest's staged uploads).
    cleanup: Callable[["Job"], None] | None = None
    # A shard of its parent's work, run at the same time as its sibling shards (by whichever
    # workers take them): its progress adds to theirs on the parent's bar (`job_shards_start`).
    shard: bool = False
    # Started by the beat on its own (e.g. the periodic Label Studio sync): lists leave out its
    # jobs that nobody launched unless asked, so that they never crowd out a project's real jobs.
    housekeeping: bool = False
    # What its job page links to: (what it is, the page's URL name, the row-id key in the job's
    # parameters or result). The URL takes the project's id, then that id; a key of None: the
    # project's id alone (e.g. the footage an ingest added to).
    produces: tuple[str, str, str | None] | None = None

    def resolve_queue(self) -> str:
        queue = self.queue() if callable(self.queue) else self.queue
        if queue not in ("cpu", "gpu"):
            raise ValueError(f"Unknown queue {queue!r} for job kind {self.name!r}.")
        return queue


JOB_KINDS: dict[str, JobKind] = {}


def queue_setting(name: str) -> Callable[[], str]:
    """The queue named by a setting, read at launch, so a deployment decides where a kind runs
    (e.g. VLM_QUEUE: gpu where GPU workers run, cpu on a machine without one)."""

    def resolve() -> str:
        return getattr(settings, name)

    resolve.__name__ = f"queue_setting_{name.lower()}"
    return resolve


VLM_QUEUE = queue_setting("VLM_QUEUE")  # detection, captioning, judging, fine-tuning, the demo's models
EMBED_QUEUE = queue_setting("EMBED_QUEUE")  # CLIP embeddings


def id_params(*keys: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The parameter cleaner of a kind whose job works on rows: each key a positive integer (a
    row's id), and nothing else kept. The handler loads the rows within the job's project."""

    def clean(params: dict[str, Any]) -> dict[str, Any]:
        cleaned = {}
        for key in keys:
            value = params.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer (a row id)")
            cleaned[key] = value
        return cleaned

    return clean


def shard_params(row_key: str | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The parameter cleaner of a shard kind: the row's id (unless its work is no row's), and the
    range of positions in the work's items the shard covers, [start, stop)."""
    clean_row = id_params(row_key) if row_key else id_params()

    def clean(params: dict[str, Any]) -> dict[str, Any]:
        cleaned = clean_row(params)
        start, stop = params.get("start"), params.get("stop")
        for key, value in (("start", start), ("stop", stop)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be a non-negative integer (a position)")
        if stop <= start:
            raise ValueError("stop must be after start")
        return {**cleaned, "start": start, "stop": stop}

    return clean


def job_kind(
    *,
    name: str,
    label: str,
    queue: str | Callable[[], str],
    clean_params: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    soft_time_limit: int | None = None,
    time_limit: int | None = None,
    launchable: bool = False,
    cleanup: Callable[["Job"], None] | None = None,
    shard: bool = False,
    housekeeping: bool = False,
    produces: tuple[str, str, str | None] | None = None,
) -> Callable[[JobHandler], JobHandler]:
    if not callable(queue) and queue not in ("cpu", "gpu"):
        raise ValueError(f"Unknown queue {queue!r} for job kind {name!r}.")

    def register(handler: JobHandler) -> JobHandler:
        if name in JOB_KINDS:
            raise ValueError(f"Job kind {name!r} is registered twice.")
        JOB_KINDS[name] = JobKind(
            name=name,
            label=label,
            queue=queue,
            handler=handler,
            clean_params=clean_params or (lambda params: dict(params)),
            soft_time_limit=soft_time_limit,
            time_limit=time_limit,
            launchable=launchable,
            cleanup=cleanup,
            shard=shard,
            housekeeping=housekeeping,
            produces=produces,
        )
        return handler

    return register


def launchable_kinds() -> list[JobKind]:
    return sorted((kind for kind in JOB_KINDS.values() if kind.launchable), key=lambda kind: kind.label)


def job_kind_get(name: str) -> JobKind:
    try:
        return JOB_KINDS[name]
    except KeyError:
        known = ", ".join(sorted(JOB_KINDS))
        raise ApplicationError(f"Unknown job kind {name!r}; known kinds: {known}.", field="kind") from None
