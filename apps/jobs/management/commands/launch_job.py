import json
import time

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApplicationError
from apps.jobs.models import Job
from apps.jobs.services import job_create
from apps.projects.models import Project


class Command(BaseCommand):
    help = "Launch a job of any registered kind and, with --wait, follow it with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("kind")
        parser.add_argument("--project", type=int, required=True, help="project id")
        parser.add_argument("--params", default="{}", help="JSON object of parameters")
        parser.add_argument("--user", default=None, help="username recorded as the launcher")
        parser.add_argument("--wait", action="store_true", help="follow progress until the job ends")

    def handle(self, *args, kind, project, params, user, wait, **options):
        project_obj = Project.objects.filter(id=project).first()
        if project_obj is None:
            raise CommandError(f"No project with id {project}.")
        try:
            params_obj = json.loads(params)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--params is not JSON: {exc}") from exc
        user_obj = User.objects.filter(username=user).first() if user else None
        try:
            job = job_create(kind=kind, project=project_obj, created_by=user_obj, params=params_obj)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Queued job #{job.id} ({kind}).")
        if wait:
            job = follow_job(job.id, self.stdout)
            if job.status != "succeeded":
                raise CommandError(f"Job #{job.id} ended {job.status}: {job.error or job.message}")


def follow_job(job_id: int, out, poll_seconds: float = 0.5) -> Job:
    """Draw a text progress bar until the job ends."""
    width = 30
    last_line = ""
    while True:
        job = Job.objects.get(id=job_id)
        filled = int(job.progress * width)
        bar = "#" * filled + "." * (width - filled)
        line = f"\r[{bar}] {job.progress_percent:3d}% {job.status:<9} {job.message[:60]:<60}"
        if line != last_line:  # redraw only on change: logs of non-terminals stay short
            out.write(line, ending="")
            out.flush()
            last_line = line
        if job.is_finished:
            out.write("")
            return job
        time.sleep(poll_seconds)
