from django.core.management.base import CommandError

from apps.captioning.models import CaptionPipeline, DetectionRun
from apps.captioning.selectors import caption_run_done_before
from apps.captioning.services import caption_run_start
from apps.jobs.commands import JobCommand
from apps.modelhub.models import ModelRole
from apps.modelhub.selectors import model_version_pick
from apps.modelhub.services import model_versions_ensure


class Command(JobCommand):
    help = "Caption frames: with a detection run's characters (detector → captioner) or the whole roster."
    reusable = True

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--pipeline", choices=CaptionPipeline.values, default=CaptionPipeline.DETECTION)
        parser.add_argument(
            "--detection-run", type=int, default=None, help="default: the latest (not an evaluation's own)"
        )
        parser.add_argument("--assets", type=int, nargs="*", default=None, help="default: the detection run's frames")
        parser.add_argument("--limit", type=int, default=None, help="caption only the first N frames")
        parser.add_argument("--model", default="", help="captioner name (default: the project's default)")

    def handle(self, *args, project, user, pipeline, detection_run, assets, limit, model, reuse, **options):
        project_obj = self.project(project)
        model_versions_ensure(project=project_obj)
        version = model_version_pick(project=project_obj, role=ModelRole.CAPTIONER, name=model)
        runs = DetectionRun.objects.filter(project=project_obj).order_by("-id")
        # Default: the newest run someone started, not a stage of another job (an evaluation's pipelines).
        started = runs.filter(job__parent__isnull=True)
        run = runs.filter(id=detection_run).first() if detection_run else (started.first() or runs.first())
        if pipeline == CaptionPipeline.DETECTION and run is None:
            raise CommandError("No detection run: run `manage.py detect` first.")
        asset_ids = assets if assets is not None else (run.frame_ids() if run else [])
        if limit:
            asset_ids = asset_ids[:limit]
        previous = (
            caption_run_done_before(
                project=project_obj, model_version=version, pipeline=pipeline, asset_ids=asset_ids, detection_run=run
            )
            if reuse
            else None
        )
        result = self.run(
            lambda: (
                caption_run_start(
                    project=project_obj,
                    model_version=version,
                    pipeline=pipeline,
                    created_by=self.user(user),
                    asset_ids=asset_ids,
                    detection_run=run,
                    enqueue=False,
                ).job
            ),
            reuse=previous.job if previous else None,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Caption run #{result['caption_run_id']} ({result['model']}): {result['frames']} frames, "
                f"{result['failed']} not in the schema ({result['failure_rate']:.0%})"
            )
        )
