from apps.curation.selectors import clustering_done_before
from apps.curation.services import clustering_start
from apps.jobs.commands import JobCommand


class Command(JobCommand):
    help = "Project the latest embeddings to 2-D with UMAP and cluster them with HDBSCAN."
    reusable = True

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--n-neighbors", type=int, default=15)
        parser.add_argument("--min-dist", type=float, default=0.1)
        parser.add_argument("--metric", default="cosine")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--min-cluster-size", type=int, default=5)
        parser.add_argument("--min-samples", type=int, default=None)

    def handle(self, *args, project, user, reuse, **options):
        project_obj = self.project(project)
        params = {
            key: options[key]
            for key in ("n_neighbors", "min_dist", "metric", "seed", "min_cluster_size", "min_samples")
        }
        result = self.run(
            lambda: clustering_start(project=project_obj, created_by=self.user(user), params=params, enqueue=False),
            reuse=clustering_done_before(project=project_obj, params=params) if reuse else None,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"{result['clusters']} clusters over {result['points']} frames; "
                f"noise share {result['noise_share']:.1%} (clustering #{result['clustering_run_id']})"
            )
        )
