"""Train the demo world's models (once per world seed and training-code version) and make them
the demo project's defaults: `manage.py demo_models "Demo world"`."""

from django.core.management.base import CommandError

from apps.jobs.commands import JobCommand
from apps.jobs.services import job_create
from apps.media.models import GroundTruthManifest


class Command(JobCommand):
    help = (
        "Train the demo's CLIP, captioner and detector base on another stretch of the demo world "
        "(another seed) and make them the demo project's; reuses a model trained the same way."
    )

    def handle(self, *args, project, user, **options):
        project_obj = self.project(project)
        manifest = GroundTruthManifest.objects.filter(project=project_obj).order_by("id").first()
        if manifest is None:
            raise CommandError(f"{project_obj.name} has no demo world: run `manage.py demo_world` first.")
        seed = manifest.data["config"]["seed"]
        result = self.run(
            lambda: job_create(
                kind="demo_models",
                project=project_obj,
                created_by=self.user(user),
                params={"seed": seed},
                enqueue=False,
            )
        )
        how = "reused" if result["reused"] else "trained"
        self.stdout.write(self.style.SUCCESS(f"Demo models {how} in {result['folder']}: {', '.join(result['models'])}"))
