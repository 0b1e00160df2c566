from pathlib import Path

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApplicationError
from apps.jobs.inline import job_run_inline
from apps.media.services import ingest_start_from_paths
from apps.projects.selectors import project_by_id_or_name


class Command(BaseCommand):
    help = "Ingest image files, folders, zip archives and videos into a project (runs here, with a progress bar)."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project id or exact name")
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--every", type=float, default=1.0, help="sample a video frame every N seconds")
        parser.add_argument("--user", default=None, help="username recorded as the uploader")

    def handle(self, *args, project, paths, every, user, **options):
        project_obj = project_by_id_or_name(project)
        if project_obj is None:
            raise CommandError(f"No project {project!r}.")
        user_obj = User.objects.filter(username=user).first() if user else None
        try:
            job = ingest_start_from_paths(
                project=project_obj, paths=paths, created_by=user_obj, sample_every_seconds=every, enqueue=False
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Ingesting {len(job.params['files'])} file(s) into {project_obj.name!r} as job #{job.id}")
        job = job_run_inline(job, self.stdout)
        if job.status != "succeeded":
            raise CommandError(f"Job #{job.id} ended {job.status}: {job.error or job.message}")
        result = job.result
        for entry in result["files"]:
            self.stdout.write(f"  {entry['outcome']:<9} {entry['name']}  {entry['reason']}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{result['added']} added, {result['duplicates']} duplicates, {result['refused']} refused"
            )
        )
