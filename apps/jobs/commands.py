"""Shared shape of the pipeline commands: find the project, start the job here, draw progress,
and (with --reuse) show the result of the same work done before instead of doing it again."""

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApplicationError
from apps.jobs.inline import job_run_inline
from apps.jobs.models import Job
from apps.projects.models import Project
from apps.projects.selectors import project_by_id_or_name


class JobCommand(BaseCommand):
    # Commands whose work is a pure function of its settings and inputs take --reuse.
    reusable = False

    def add_arguments(self, parser):
        parser.add_argument("project", help="project id or exact name")
        parser.add_argument("--user", default=None, help="username recorded as the launcher")
        if self.reusable:
            parser.add_argument(
                "--reuse",
                action="store_true",
                help="if this was done before with the same settings on the same inputs, show that result "
                "instead of doing it again (what a second `make demo` does)",
            )

    def project(self, value: str) -> Project:
        project = project_by_id_or_name(value)
        if project is None:
            raise CommandError(f"No project {value!r}.")
        return project

    def user(self, username: str | None) -> User | None:
        return User.objects.filter(username=username).first() if username else None

    def run(self, start, reuse: Job | None = None) -> dict:
        """The result of the job `start()` creates, run here; or of `reuse`, the job that did the
        same work before, when there is one."""
        if reuse is not None:
            self.stdout.write(
                f"Reusing job #{reuse.id} ({reuse.kind}, finished {reuse.finished_at:%Y-%m-%d %H:%M}): "
                "the same settings on the same inputs. Leave out --reuse to do it again."
            )
            return reuse.result
        try:
            job = start()
        except (ApplicationError, ValueError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from exc
        self.stdout.write(f"Job #{job.id} ({job.kind})")
        job = job_run_inline(job, self.stdout)
        if job.status != "succeeded":
            raise CommandError(f"Job #{job.id} ended {job.status}: {job.error or job.message}")
        return job.result
