from django.core.management.base import CommandError

from apps.captioning.selectors import detection_run_done_before
from apps.captioning.services import detection_run_start
from apps.curation.models import GoldSet
from apps.jobs.commands import JobCommand
from apps.modelhub.models import ModelRole
from apps.modelhub.selectors import model_version_pick
from apps.modelhub.services import model_versions_ensure


class Command(JobCommand):
    help = "Detect characters on a gold set (default: the latest) or on given frames."
    reusable = True

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--gold-set", type=int, default=None, help="gold set version (default: latest)")
        parser.add_argument("--assets", type=int, nargs="*", default=None, help="asset ids instead of a gold set")
        parser.add_argument("--model", default="", help="detector name (default: the project's default)")

    def handle(self, *args, project, user, gold_set, assets, model, reuse, **options):
        project_obj = self.project(project)
        model_versions_ensure(project=project_obj)
        version = model_version_pick(project=project_obj, role=ModelRole.DETECTOR, name=model)
        gold = None
        if assets is None:
            gold_sets = GoldSet.objects.filter(project=project_obj).order_by("-version")
            gold = gold_sets.filter(version=gold_set).first() if gold_set else gold_sets.first()
            if gold is None:
                raise CommandError("No gold set: run `manage.py sample_gold` first, or pass --assets.")
        previous = (
            detection_run_done_before(project=project_obj, model_version=version, gold_set=gold, asset_ids=assets)
            if reuse
            else None
        )
        result = self.run(
            lambda: (
                detection_run_start(
                    project=project_obj,
                    model_version=version,
                    created_by=self.user(user),
                    gold_set=gold,
                    asset_ids=assets,
                    enqueue=False,
                ).job
            ),
            reuse=previous.job if previous else None,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Detection run #{result['detection_run_id']} ({result['model']}): {result['frames']} frames, "
                f"{result['failed']} unparseable ({result['failure_rate']:.0%})"
            )
        )
