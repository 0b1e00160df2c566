"""Runs one job inside a Celery worker: claim, heartbeat, call the kind's handler, finish.

Handlers receive a JobContext; calling `ctx.progress(...)` reports progress and is also the
cooperative cancel point (it raises JobCancelled once a lead asked to cancel). A background
thread keeps the heartbeat fresh during long single steps, so the sweeper only sees a job as
stale when its worker is really gone.
"""

import gc
import logging
import os
import socket
import sys
import threading
import traceback as traceback_module
from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from apps.jobs import services
from apps.jobs.kinds import job_kind_get

logger = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised at a progress report after a lead asked to cancel; the handler may clean up."""


class JobWaiting(Exception):  # noqa: N818 — a signal to the runner, not an error
    """Raised by `ctx.wait_for_stages`: the handler started its next stages (child jobs) and gives
    its worker back; it runs again, from the top, once they have all ended."""

    def __init__(self, progress: float, message: str):
        super().__init__(message)
        self.progress = progress
        self.message = message


class JobContext:
    def __init__(
        self,
        job_id: int,
        attempt: int | None = None,
        parent_id: int | None = None,
        parent_span: tuple[float, float] = (0.0, 0.0),
        label: str = "",
        shard: bool = False,
    ):
        self.job_id = job_id
        self.attempt = attempt  # progress from an attempt that lost the job raises JobSuperseded
        self.parent_id = parent_id  # a stage of this parent job: its bar moves with ours
        self.parent_span = parent_span
        self.label = label
        self.shard = shard  # one of its parent's shards: the parent's bar sums all of them

    @classmethod
    def for_job(cls, job, attempt: int | None = None) -> "JobContext":
        return cls(
            job.id,
            attempt,
            parent_id=job.parent_id,
            parent_span=(job.parent_progress_from, job.parent_progress_to),
            label=job.kind_label,
            shard=job_kind_get(job.kind).shard,
        )

    def progress(self, fraction: float, message: str = "") -> None:
        try:
            cancel_asked = self._report(fraction, message)
        except (OperationalError, InterfaceError) as exc:
            # The database went away for a moment (a restart, a failover, SQLite's lock held too
            # long). A report is only advisory and the next one catches up, so the job goes on; its
            # final status is written with retries (_write_final). Inside a transaction the caller's
            # work is lost with the connection: that error is the caller's to see.
            if connection.in_atomic_block:
                raise
            logger.warning("Job %s: progress not recorded, the database is unavailable: %s", self.job_id, exc)
            connection.close()
            return
        if cancel_asked:
            raise JobCancelled()

    def _report(self, fraction: float, message: str) -> bool:
        """Record the progress (the parent's too); returns whether a lead asked to cancel."""
        if services.job_report_progress(job_id=self.job_id, progress=fraction, message=message, attempt=self.attempt):
            return True
        if self.parent_id is not None and self.shard:
            services.job_report_shards_progress(parent_id=self.parent_id)
        elif self.parent_id is not None:
            services.job_report_stage_progress(
                parent_id=self.parent_id,
                span=self.parent_span,
                progress=fraction,
                message=f"{self.label} (job #{self.job_id}): {message}" if message else self.label,
            )
        return False

    def wait_for_stages(self, fraction: float, message: str) -> None:
        """Give the worker back until every child job of this one has ended (never returns)."""
        raise JobWaiting(fraction, message)

    def log(self, text: str) -> None:
        """A line for the job page's log (use for milestones, not every step)."""
        services.job_log(job_id=self.job_id, text=text)

    def step_reporter(self, total: int, message: str = "") -> Callable[[int], None]:
        """A callback for `workers/` loops: `on_step(done)` → progress done/total."""

        def on_step(done: int) -> None:
            self.progress(done / max(total, 1), message.format(done=done, total=total) if message else "")

        return on_step


class _Heartbeat(threading.Thread):
    def __init__(self, job_id: int, attempt: int, every_seconds: float):
        super().__init__(name=f"job-{job_id}-heartbeat", daemon=True)
        self.job_id = job_id
        self.attempt = attempt
        self.every_seconds = every_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.every_seconds):
                try:
                    services.job_heartbeat(job_id=self.job_id, attempt=self.attempt)
                except services.JobSuperseded:
                    return  # another attempt owns the job now; its own thread beats for it
                except Exception:  # a passing DB error must not kill the job; the next beat retries
                    logger.exception("Heartbeat of job %s failed", self.job_id)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=self.every_seconds * 2 + 1)


def _write_final(write: Callable[[], bool]) -> None:
    """Write the final status even if the database connection dropped during the job."""
    for attempt in range(3):
        try:
            close_old_connections()
            write()
            return
        except (OperationalError, InterfaceError):
            logger.warning("Database unavailable writing the final status (try %s)", attempt + 1)
            connection.close()
    close_old_connections()
    write()


def job_execute(job_id: int) -> str:
    """The body of the Celery task. Returns the outcome for logs."""
    close_old_connections()
    job = services.job_claim(job_id=job_id, worker=f"{socket.gethostname()} (pid {os.getpid()})")
    if job is None:
        logger.info("Job %s not claimable (duplicate delivery, cancelled or finished); skipping", job_id)
        return "skipped"
    attempt = job.attempts
    heartbeat = _Heartbeat(job.id, attempt, settings.JOB_HEARTBEAT_SECONDS)
    heartbeat.start()
    outcome = "failed"
    try:
        result: dict[str, Any] = job_kind_get(job.kind).handler(job, JobContext.for_job(job, attempt)) or {}
    except JobWaiting as signal:
        outcome = "waiting"
        progress, message = signal.progress, signal.message
        _write_final(
            lambda: services.job_mark_waiting(job_id=job.id, attempt=attempt, progress=progress, message=message)
        )
    except services.JobSuperseded:
        outcome = "superseded"  # a newer attempt owns the job: write nothing more
        logger.warning("Job %s attempt %s was superseded; stopping", job.id, attempt)
    except JobCancelled:
        outcome = "cancelled"
        _write_final(lambda: services.job_mark_cancelled(job_id=job.id, attempt=attempt))
    except SoftTimeLimitExceeded:
        _write_final(
            lambda: services.job_mark_failed(
                job_id=job.id, error="The job ran past its time limit and was stopped.", attempt=attempt
            )
        )
    except Exception as exc:
        logger.exception("Job %s failed", job.id)
        error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        trace = traceback_module.format_exc()
        _write_final(lambda: services.job_mark_failed(job_id=job.id, error=error, traceback=trace, attempt=attempt))
    else:
        outcome = "succeeded"
        _write_final(lambda: services.job_mark_succeeded(job_id=job.id, result=result, attempt=attempt))
    finally:
        heartbeat.stop()
        _free_memory()
    return outcome


def _free_memory() -> None:
    """A job's models are garbage once its handler returned; give their memory back now, not at the
    next allocation (a worker running jobs in-process, e.g. a management command, runs several).
    torch is only asked if a handler already imported it: the web process never loads it."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
