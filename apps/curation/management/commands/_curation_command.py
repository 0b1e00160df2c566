"""Shared shape of the curation commands: find the project, start the job here, draw progress."""

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApplicationError
from apps.jobs.inline import job_run_inline
from apps.projects.models import Project
from apps.projects.selectors import project_by_id_or_name


class CurationCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("project", help="project id or exact name")
        parser.add_argument("--user", default=None, help="username recorded as the launcher")

    def project(self, value: str) -> Project:
        project = project_by_id_or_name(value)
        if project is None:
            raise CommandError(f"No project {value!r}.")
        return project

    def user(self, username: str | None) -> User | None:
        return User.objects.filter(username=username).first() if username else None

    def run(self, start) -> dict:
        try:
            job = start()
        except (ApplicationError, ValueError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from exc
        self.stdout.write(f"Job #{job.id} ({job.kind})")
        job = job_run_inline(job, self.stdout)
        if job.status != "succeeded":
            raise CommandError(f"Job #{job.id} ended {job.status}: {job.error or job.message}")
        return job.result
