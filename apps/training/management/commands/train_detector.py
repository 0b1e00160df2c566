from django.core.management.base import CommandError

from apps.jobs.commands import JobCommand
from apps.labeling.models import LabelingProject
from apps.modelhub.models import ModelRole
from apps.modelhub.selectors import model_version_pick
from apps.modelhub.services import model_versions_ensure
from apps.training.selectors import training_run_done_before
from apps.training.services import sft_defaults, training_run_start


class Command(JobCommand):
    help = (
        "Fine-tune a detector (LoRA SFT) on a labelled gold set, here and now, and print the "
        "before/after table. Defaults: the paper's recipe (the tiny profile's for tiny models)."
    )
    reusable = True

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--model", default="", help="base detector name (default: the project's default)")
        parser.add_argument("--gold-set", type=int, default=None, help="gold set version (default: latest labelled)")
        for name, kind in (
            ("epochs", int),
            ("learning-rate", float),
            ("rank", int),
            ("batch-size", int),
            ("seed", int),
        ):
            parser.add_argument(f"--{name}", type=kind, default=None)
        parser.add_argument("--merge", action="store_true", help="also merge the adapter and check equivalence")

    def handle(self, *args, project, user, model, gold_set, merge, reuse, **options):
        project_obj = self.project(project)
        model_versions_ensure(project=project_obj)
        base = model_version_pick(project=project_obj, role=ModelRole.DETECTOR, name=model)
        sources = LabelingProject.objects.filter(project=project_obj, status="ready").order_by("-gold_set__version")
        source = sources.filter(gold_set__version=gold_set).first() if gold_set else sources.first()
        if source is None:
            raise CommandError("No labelled gold set: run `manage.py label_gold` and label it first.")
        params = sft_defaults(base)
        for key in ("epochs", "learning_rate", "rank", "batch_size", "seed"):
            if options.get(key) is not None:
                params[key] = options[key]
        previous = (
            training_run_done_before(base_version=base, labeling_project=source, params=params, merge=merge)
            if reuse
            else None
        )
        result = self.run(
            lambda: training_run_start(
                base_version=base, labeling_project=source, params=params, merge=merge,
                created_by=self.user(user), enqueue=False,
            ).job,
            reuse=previous.job if previous else None,
        )  # fmt: skip
        self.stdout.write(self.style.SUCCESS(f"New detector version: {result.get('detector_version')}"))
        table = result.get("before_after")
        if table:
            self.stdout.write("Validation split            base   fine-tuned")
            for metric, (before, after) in table.items():
                self.stdout.write(f"  {metric:<20} {_fmt(before):>9}   {_fmt(after):>10}")


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"
