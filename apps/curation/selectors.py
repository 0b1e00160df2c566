import sys
from array import array

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from apps.curation.models import ClusteringRun, EmbeddingRun, GoldItem, GoldSet
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


PROJECTION_FORMAT = 1  # bump when the layout below changes: cached arrays are then made again
CLUSTER_TABLE_ROWS = 100


def projection_arrays(*, clustering: ClusteringRun) -> bytes:
    """Every point of the projection as four little-endian arrays one after the other: asset ids
    (int32), x and y (float32), cluster labels (int32; -1 = noise), 16 bytes a point. A clustering's
    points never change, so they are read and packed once and cached: 100,000 points are 1.6 MB
    that the browser fetches once and hands to WebGL as typed arrays."""
    # The creation time too: an id can come again (a database made anew beside a kept cache).
    key = f"projection:{clustering.id}:{clustering.created_at.timestamp()}:{PROJECTION_FORMAT}"
    packed = cache.get(key)
    if packed is None:
        rows = list(clustering.points.order_by("asset_id").values_list("asset_id", "x", "y", "cluster"))
        columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
        arrays = [array(code, column) for code, column in zip("iffi", columns, strict=True)]
        if sys.byteorder != "little":
            for values in arrays:
                values.byteswap()
        packed = b"".join(values.tobytes() for values in arrays)
        cache.set(key, packed, timeout=None)
    return packed


def cluster_table(*, clustering: ClusteringRun, gold_set: GoldSet | None) -> tuple[list[dict], int]:
    """The CLUSTER_TABLE_ROWS largest clusters (noise last): size and the gold picks made from
    each; and how many clusters there are in all. Sizes come from the clustering's stored
    summary, not a count of its points."""
    sizes = {int(label): size for label, size in clustering.cluster_sizes.items()}  # noise is counted apart
    if clustering.noise_count:
        sizes[-1] = clustering.noise_count
    shown = sorted(sizes, key=lambda label: (label == -1, -sizes[label], label))[:CLUSTER_TABLE_ROWS]
    if -1 in sizes and -1 not in shown:
        shown.append(-1)
    picks: dict[int, list[int]] = {}
    if gold_set is not None:
        in_shown = Q(cluster__in=shown) | Q(cluster__isnull=True)  # a pick by hand has no cluster: the noise row
        for asset_id, cluster in gold_set.items.filter(in_shown).values_list("asset_id", "cluster"):
            picks.setdefault(cluster if cluster is not None else -1, []).append(asset_id)
    rows = [{"cluster": label, "size": sizes[label], "picks": picks.get(label, [])} for label in shown]
    return rows, clustering.n_clusters


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
    """In the order the set was made (by cluster when sampled): keyset pages go by id."""
    return gold_set.items.select_related("asset", "asset__video").order_by("id")


def asset_gold_memberships(*, asset: Asset) -> QuerySet[GoldItem]:
    return GoldItem.objects.filter(asset=asset).select_related("gold_set").order_by("-gold_set__version")


def gold_set_drafts(*, project: Project) -> QuerySet[GoldSet]:
    return GoldSet.objects.filter(project=project, status="draft").order_by("-version")
