"""Celery adapters: take an id, call the runner or a service."""

from celery import shared_task

from apps.jobs import runner, services


@shared_task(name="apps.jobs.tasks.run_job", acks_late=True, ignore_result=True)
def run_job(job_id: int) -> str:
    return runner.job_execute(job_id)


@shared_task(name="apps.jobs.tasks.sweep_jobs", ignore_result=True)
def sweep_jobs() -> dict[str, list[int]]:
    return services.jobs_sweep()
