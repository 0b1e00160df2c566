from django.core.management.base import CommandError

from apps.captioning.models import DetectionRun
from apps.curation.models import GoldSet
from apps.curation.services import gold_set_freeze
from apps.jobs.commands import JobCommand
from apps.labeling.models import LabelingProject
from apps.labeling.services import labeling_project_start, labeling_push_retry


class Command(JobCommand):
    help = (
        "Send a gold set (default: the latest; frozen first if still a draft) to Label Studio with "
        "pre-annotations from a detection run over it (default: the latest). Re-running resumes a push."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--gold-set", type=int, default=None, help="gold set version (default: latest)")
        parser.add_argument(
            "--detection-run", type=int, default=None, help="detection run id (default: latest on the set)"
        )
        parser.add_argument("--no-predictions", action="store_true", help="no pre-annotation at all")
        parser.add_argument(
            "--control-fraction", type=float, default=0.1, help="share of frames without pre-annotation"
        )
        parser.add_argument("--freeze", action="store_true", help="freeze the gold set if it is a draft")

    def handle(
        self, *args, project, user, gold_set, detection_run, no_predictions, control_fraction, freeze, **options
    ):
        project_obj = self.project(project)
        gold_sets = GoldSet.objects.filter(project=project_obj).order_by("-version")
        gold = gold_sets.filter(version=gold_set).first() if gold_set else gold_sets.first()
        if gold is None:
            raise CommandError("No gold set: run `manage.py sample_gold` first.")
        if gold.status == "draft" and freeze:
            gold = gold_set_freeze(gold_set=gold)
            self.stdout.write(f"Froze {gold}.")
        existing = LabelingProject.objects.filter(gold_set=gold).first()
        if existing is not None:
            if existing.status == "ready":
                self.stdout.write(
                    self.style.SUCCESS(f"{gold} is already in Label Studio (project #{existing.ls_project_id}).")
                )
                return
            result = self.run(
                lambda: labeling_push_retry(labeling_project=existing, created_by=self.user(user)).push_job
            )
        else:
            run = None
            if not no_predictions:
                runs = DetectionRun.objects.filter(project=project_obj, gold_set=gold).order_by("-id")
                run = runs.filter(id=detection_run).first() if detection_run else runs.first()
                if run is None:
                    raise CommandError(
                        "No detection run over this gold set: run `manage.py detect` or pass --no-predictions."
                    )
            result = self.run(
                lambda: (
                    labeling_project_start(
                        gold_set=gold,
                        detection_run=run,
                        control_fraction=control_fraction,
                        created_by=self.user(user),
                        enqueue=False,
                    ).push_job
                )
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Label Studio project #{result['ls_project_id']}: {result['tasks_imported']} tasks imported "
                f"({result['pre_annotated']} pre-annotated, {result['control_tasks']} in the control slice)."
            )
        )
