from django.core.management.base import CommandError

from apps.core.errors import ApplicationError
from apps.evaluation.models import Comparison
from apps.jobs.commands import JobCommand
from apps.review.models import Review
from apps.review.services import review_create_from_comparison


class Command(JobCommand):
    help = (
        "Make a review of an evaluation (default: the newest finished one): its base detector's captions "
        "against its newest detector's, blind, for the reviewers; prints where it is."
    )
    reusable = True

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--comparison", type=int, default=None, help="comparison id (default: the newest)")

    def handle(self, *args, project, user, comparison, reuse, **options):
        project_obj = self.project(project)
        finished = Comparison.objects.filter(project=project_obj, job__status="succeeded").order_by("-id")
        chosen = finished.filter(id=comparison).first() if comparison else finished.first()
        if chosen is None:
            raise CommandError("No finished evaluation: run `manage.py evaluate` first.")
        review = Review.objects.filter(comparison=chosen).order_by("-id").first() if reuse else None
        if review is not None:
            self.stdout.write(f"Reusing {review} (made {review.created_at:%Y-%m-%d %H:%M}).")
        else:
            try:
                review = review_create_from_comparison(comparison=chosen, created_by=self.user(user))
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{review}: {review.frame_count} frames; review it at /projects/{project_obj.id}/reviews/{review.id}/"
            )
        )
