from apps.curation.services import embedding_start
from apps.jobs.commands import JobCommand


class Command(JobCommand):
    help = "Embed a project's new frames with CLIP (the model profile's, or the project's own)."

    def handle(self, *args, project, user, **options):
        project_obj = self.project(project)
        result = self.run(lambda: embedding_start(project=project_obj, created_by=self.user(user), enqueue=False))
        if result.get("up_to_date"):
            self.stdout.write(
                self.style.SUCCESS(
                    f"{result['model']}: nothing new to embed; embedding run #{result['embedding_run_id']} "
                    f"holds all {result['reused']} frames"
                )
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"{result['model']}: {result['embedded']} embedded, {result['reused']} reused, "
                f"{result['failed']} failed ({result['images_per_second']} images/s)"
            )
        )
