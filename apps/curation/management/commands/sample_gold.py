from django.core.management.base import CommandError

from apps.curation.models import ClusteringRun
from apps.curation.selectors import gold_sample_done_before
from apps.curation.services import gold_sample_start
from apps.jobs.commands import JobCommand


class Command(JobCommand):
    help = "Sample a new gold-set version: one frame per cluster of the latest (or given) clustering."
    reusable = True

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--clustering", type=int, default=None, help="clustering run id (default: latest)")
        parser.add_argument("--strategy", default="centroid", choices=["centroid", "random"])
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--noise-picks", type=int, default=0)
        parser.add_argument("--target-size", type=int, default=None)

    def handle(self, *args, project, user, clustering, reuse, **options):
        project_obj = self.project(project)
        runs = ClusteringRun.objects.filter(project=project_obj).order_by("-id")
        run = runs.filter(id=clustering).first() if clustering else runs.first()
        if run is None:
            raise CommandError("No clustering run: run `manage.py cluster` first.")
        params = {key: options[key] for key in ("strategy", "seed", "noise_picks", "target_size")}
        result = self.run(
            lambda: gold_sample_start(clustering=run, created_by=self.user(user), params=params, enqueue=False),
            reuse=gold_sample_done_before(clustering=run, params=params) if reuse else None,
        )
        self.stdout.write(self.style.SUCCESS(f"Gold set v{result['version']}: {result['size']} frames"))
