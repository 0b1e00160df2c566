"""Run a job in the current process while drawing its progress bar (management commands)."""

import threading
import time

from django.db import connection

from apps.jobs.management.commands.launch_job import follow_job
from apps.jobs.models import Job, JobStatus
from apps.jobs.runner import job_execute


def job_run_tree(job_id: int, poll_seconds: float = 0.5) -> Job:
    """Run a job here until it ends, and each of its stages (child jobs) as they are started.

    Any worker listening on a stage's queue may take a stage first: claiming is atomic, so each
    stage still runs once, here or there; this process then waits for it. Each stage's models are
    freed when its handler returns, before the next one loads."""
    while True:
        if Job.objects.filter(id=job_id, status=JobStatus.QUEUED).exists():
            job_execute(job_id)  # unless a worker claims it first
        job = Job.objects.get(id=job_id)
        if job.is_finished:
            return job
        if job.status == JobStatus.WAITING:
            queued = list(job.children.filter(status=JobStatus.QUEUED).values_list("id", flat=True))
            for child_id in queued:
                job_run_tree(child_id, poll_seconds)
            if queued:
                continue
        time.sleep(poll_seconds)  # running elsewhere, or its stages are


def job_run_inline(job: Job, out) -> Job:
    def work() -> None:
        try:
            job_run_tree(job.id)
        finally:
            connection.close()  # this thread's own connection

    worker = threading.Thread(target=work, name=f"job-{job.id}", daemon=True)
    worker.start()
    finished = follow_job(job.id, out)
    worker.join()
    return finished
