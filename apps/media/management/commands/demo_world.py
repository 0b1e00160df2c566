"""Create the demo project from the synthetic demo world and ingest its video (idempotent)."""

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from apps.jobs.inline import job_run_inline
from apps.media import services as media_services
from apps.media.models import Video
from apps.projects import services as project_services
from apps.projects.models import Character, Membership, Project
from workers.demo import DemoWorldConfig, generate_demo_world
from workers.demo.world import MANIFEST_VERSION

DEMO_PROJECT = "Demo world"


def _stale(manifest: dict, seconds: int, seed: int) -> bool:
    """A world drawn with other settings, or by an older generator, is drawn again."""
    config = manifest.get("config", {})
    return manifest.get("version") != MANIFEST_VERSION or (config.get("seconds"), config.get("seed")) != (seconds, seed)


class Command(BaseCommand):
    help = "Generate the synthetic demo world, create its project and roster, and ingest its video."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=int, default=120, help="length of the demo film (one shot a second)")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--out", type=Path, default=None, help="folder for the generated world")
        parser.add_argument("--lead", default="lead", help="the lead who owns the project")

    def handle(self, *args, seconds, seed, out, lead, **options):
        lead_user = User.objects.filter(username=lead).first()
        if lead_user is None:
            raise CommandError(f"No user {lead!r}; run `manage.py seed_demo` first.")
        out = out or settings.VAR_DIR / "demo-world"
        config = DemoWorldConfig(seconds=seconds, seed=seed)
        manifest_path = out / "manifest.json"
        if not manifest_path.exists() or _stale(json.loads(manifest_path.read_text()), seconds, seed):
            self.stdout.write(f"Drawing the demo world ({seconds} s) into {out} …")
            world = generate_demo_world(config, out)
            manifest_path = world.manifest_path
        manifest = json.loads(manifest_path.read_text())

        project = Project.objects.filter(name=DEMO_PROJECT).first() or project_services.project_create(
            name=DEMO_PROJECT,
            description="A synthetic cartoon with a known cast in every frame: the whole method runs on it offline.",
            created_by=lead_user,
        )
        for user in User.objects.filter(username__in=["lead", "annotator", "annotator2", "reviewer"]):
            Membership.objects.get_or_create(project=project, user=user)
        for entry in manifest["characters"]:
            if Character.objects.filter(project=project, name=entry["name"]).exists():
                continue
            character = project_services.character_create(
                project=project, name=entry["name"], description=entry["description"]
            )
            for reference in entry["references"]:
                data = (out / reference).read_bytes()
                upload = SimpleUploadedFile(Path(reference).name, data, content_type="image/png")
                project_services.reference_image_add(character=character, upload=upload)

        job = media_services.ingest_start_from_paths(
            project=project, paths=[out / "demo_world.mp4"], created_by=lead_user, enqueue=False
        )
        self.stdout.write(f"Ingesting the demo film as job #{job.id}")
        job = job_run_inline(job, self.stdout)
        if job.status != "succeeded":
            raise CommandError(f"Ingest job #{job.id} ended {job.status}: {job.error or job.message}")
        outcome = job.result["files"][0]
        self.stdout.write(f"  {outcome['outcome']}: {outcome['reason']}")

        video = Video.objects.filter(project=project).order_by("id").first()
        media_services.ground_truth_store(project=project, name="demo world", data=manifest, video=video)
        shots_with_cast = sum(1 for shot in manifest["shots"] if shot["characters"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo project #{project.id}: {len(manifest['characters'])} characters, "
                f"{video.frame_count if video else 0} frames, ground truth for {len(manifest['shots'])} shots "
                f"({shots_with_cast} with characters)."
            )
        )
