from django.core.management.base import CommandError

from apps.evaluation.models import Comparison, EvalSet
from apps.evaluation.selectors import comparison_done_before
from apps.evaluation.services import comparison_start, eval_set_create
from apps.jobs.commands import JobCommand
from apps.modelhub.models import ModelRole, ModelVersion
from apps.modelhub.selectors import model_version_pick
from apps.modelhub.services import model_versions_ensure


class Command(JobCommand):
    help = (
        "Compare captioning pipelines here and now: no detection, the default detector and the newest "
        "fine-tuned one (or --detector NAME, repeatable), the default captioner, on an eval set sampled "
        "outside every gold set; prints where the report is."
    )
    reusable = True

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--size", type=int, default=300, help="eval frames (default 300, as in the paper)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--detector", action="append", default=None, help="detector version name (repeatable)")
        parser.add_argument("--captioner", default="", help="captioner name (default: the project's default)")
        parser.add_argument("--judge", default="", help="any model version name to judge the captions (default: none)")

    def handle(self, *args, project, user, size, seed, detector, captioner, judge, reuse, **options):
        project_obj = self.project(project)
        model_versions_ensure(project=project_obj)
        versions = ModelVersion.objects.filter(project=project_obj)
        if detector:
            detectors = [
                model_version_pick(project=project_obj, role=ModelRole.DETECTOR, name=name) for name in detector
            ]
        else:
            detectors = [model_version_pick(project=project_obj, role=ModelRole.DETECTOR)]
            newest_sft = versions.filter(role=ModelRole.DETECTOR, source="sft").order_by("-id").first()
            if newest_sft is not None:
                detectors.append(newest_sft)
        judge_version = None
        if judge:
            judge_version = versions.filter(name=judge).first()
            if judge_version is None:
                raise CommandError(f"No model version named {judge!r} in this project.")
        eval_set = EvalSet.objects.filter(project=project_obj, seed=seed, requested=size).order_by("-id").first()
        if eval_set is None:
            eval_set = eval_set_create(project=project_obj, size=size, seed=seed, created_by=self.user(user))
        self.stdout.write(f"{eval_set}: {eval_set.excluded_gold} gold frames left out")
        captioner_version = model_version_pick(project=project_obj, role=ModelRole.CAPTIONER, name=captioner)
        previous = (
            comparison_done_before(
                eval_set=eval_set, captioner=captioner_version, detectors=detectors, judge=judge_version
            )
            if reuse
            else None
        )
        comparison_holder: list[Comparison] = [previous] if previous else []

        def start():
            comparison = comparison_start(
                eval_set=eval_set,
                captioner=captioner_version,
                detectors=detectors,
                judge=judge_version,
                created_by=self.user(user),
                enqueue=False,
            )
            comparison_holder.append(comparison)
            return comparison.job

        result = self.run(start, reuse=previous.job if previous else None)
        comparison = comparison_holder[0]
        self.stdout.write(
            self.style.SUCCESS(
                f"Comparison #{comparison.id}: {result['pipelines']} pipelines on {result['frames']} frames "
                f"(profile {comparison.profile}); report: /projects/{project_obj.id}/evaluation/{comparison.id}/"
            )
        )
