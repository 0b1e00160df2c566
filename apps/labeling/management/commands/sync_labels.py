from apps.jobs.commands import JobCommand
from apps.labeling.models import LabelingProject
from apps.labeling.services import labeling_sync_start


class Command(JobCommand):
    help = "Reconcile the gold labels of a project's Label Studio projects with Label Studio, now."

    def handle(self, *args, project, user, **options):
        project_obj = self.project(project)
        for labeling_project in LabelingProject.objects.filter(project=project_obj, ls_project_id__isnull=False):
            result = self.run(
                lambda lp=labeling_project: labeling_sync_start(
                    labeling_project=lp, created_by=self.user(user), enqueue=False
                )
            )
            self.stdout.write(
                self.style.SUCCESS(
                    f"{labeling_project}: {result['annotations']} annotations in Label Studio; {result['stored']} "
                    f"stored or updated, {result['unchanged']} unchanged, {result['deleted']} marked deleted."
                )
            )
