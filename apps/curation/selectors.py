from django.db.models import Count, QuerySet
from django.http import Http404

from apps.curation.models import ClusteringRun, EmbeddingRun, GoldItem, GoldSet, ProjectionPoint
from apps.jobs.models import Job
from apps.jobs.selectors import job_done_before
from apps.media.models import Asset
from apps.projects.models import Project


def embedding_run_list(*, project: Project) -> QuerySet[EmbeddingRun]:
    return EmbeddingRun.objects.filter(project=project).order_by("-id")


def clustering_run_list(*, project: Project) -> QuerySet[ClusteringRun]:
    return ClusteringRun.objects.filter(project=project).select_related("embedding_run").order_by("-id")


def clustering_done_before(*, project: Project, params: dict) -> Job | None:
    """The job that clustered the latest embeddings with these settings, if its clustering is kept."""
    embedding = embedding_run_list(project=project).first()
    if embedding is None:
        return None
    job = job_done_before(project=project, kind="cluster", params={**params, "embedding_run_id": embedding.id})
    kept = job is not None and ClusteringRun.objects.filter(id=job.result.get("clustering_run_id")).exists()
    return job if kept else None


def gold_sample_done_before(*, clustering: ClusteringRun, params: dict) -> Job | None:
    """The job that sampled a gold set from this clustering with these settings, if the set is kept."""
    job = job_done_before(
        project=clustering.project, kind="sample_gold", params={**params, "clustering_run_id": clustering.id}
    )
    kept = job is not None and GoldSet.objects.filter(id=job.result.get("gold_set_id")).exists()
    return job if kept else None


def clustering_run_get(*, project: Project, clustering_id: int) -> ClusteringRun:
    run = clustering_run_list(project=project).filter(id=clustering_id).first()
    if run is None:
        raise Http404("No such clustering run.")
    return run


def projection_points(*, clustering: ClusteringRun) -> list[tuple[int, float, float, int]]:
    """(asset_id, x, y, cluster) for every point, one query."""
    return list(clustering.points.order_by("asset_id").values_list("asset_id", "x", "y", "cluster"))


def cluster_table(*, clustering: ClusteringRun, gold_set: GoldSet | None) -> list[dict]:
    """Per cluster: size, and the gold picks made from it (noise last)."""
    sizes = (
        ProjectionPoint.objects.filter(clustering=clustering)
        .values("cluster")
        .annotate(size=Count("id"))
        .order_by("cluster")
    )
    picks: dict[int, list[int]] = {}
    if gold_set is not None:
        for asset_id, cluster in gold_set.items.values_list("asset_id", "cluster"):
            picks.setdefault(cluster if cluster is not None else -1, []).append(asset_id)
    rows = [{"cluster": row["cluster"], "size": row["size"], "picks": picks.get(row["cluster"], [])} for row in sizes]
    return sorted(rows, key=lambda row: (row["cluster"] == -1, -row["size"], row["cluster"]))


def gold_set_list(*, project: Project) -> QuerySet[GoldSet]:
    return GoldSet.objects.filter(project=project).annotate(size=Count("items")).order_by("-version")


def gold_set_get(*, project: Project, gold_set_id: int) -> GoldSet:
    gold_set = gold_set_list(project=project).filter(id=gold_set_id).first()
    if gold_set is None:
        raise Http404("No such gold set.")
    return gold_set


def gold_set_latest_for(*, clustering: ClusteringRun) -> GoldSet | None:
    return GoldSet.objects.filter(clustering=clustering).order_by("-version").first()


def gold_items(*, gold_set: GoldSet) -> QuerySet[GoldItem]:
    return gold_set.items.select_related("asset", "asset__video").order_by("cluster", "id")


def asset_gold_memberships(*, asset: Asset) -> QuerySet[GoldItem]:
    return GoldItem.objects.filter(asset=asset).select_related("gold_set").order_by("-gold_set__version")


def gold_set_drafts(*, project: Project) -> QuerySet[GoldSet]:
    return GoldSet.objects.filter(project=project, status="draft").order_by("-version")
