"""Run a job in the current process while drawing its progress bar (management commands)."""

import threading

from django.db import connection

from apps.jobs.management.commands.launch_job import follow_job
from apps.jobs.models import Job
from apps.jobs.runner import job_execute


def job_run_inline(job: Job, out) -> Job:
    def work() -> None:
        try:
            job_execute(job.id)
        finally:
            connection.close()  # this thread's own connection

    worker = threading.Thread(target=work, name=f"job-{job.id}", daemon=True)
    worker.start()
    finished = follow_job(job.id, out)
    worker.join()
    return finished
