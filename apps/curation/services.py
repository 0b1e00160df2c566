"""Writes for curation: launching embed / cluster / sample jobs, recording runs, editing gold sets."""

from typing import Any

from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.core.errors import ApplicationError, InvalidStateError
from apps.curation.models import (
    ClusteringRun,
    EmbeddingRun,
    GoldItem,
    GoldItemSource,
    GoldSet,
    GoldSetStatus,
    ProjectionPoint,
)
from apps.jobs.models import Job
from apps.jobs.services import job_create
from apps.media.models import Asset
from apps.projects.models import Project


def embedding_start(*, project: Project, created_by: User | None, enqueue: bool = True) -> Job:
    if not Asset.objects.filter(project=project).exists():
        raise ApplicationError("The project has no footage yet: upload some before embedding.")
    return job_create(kind="embed", project=project, created_by=created_by, params={}, enqueue=enqueue)


def clustering_start(*, project: Project, created_by: User | None, params: dict[str, Any], enqueue: bool = True) -> Job:
    run = EmbeddingRun.objects.filter(project=project).order_by("-id").first()
    if run is None:
        raise ApplicationError("Embed the project's frames before clustering them.")
    return job_create(
        kind="cluster",
        project=project,
        created_by=created_by,
        params={**params, "embedding_run_id": run.id},
        enqueue=enqueue,
    )


def gold_sample_start(
    *, clustering: ClusteringRun, created_by: User | None, params: dict[str, Any], enqueue: bool = True
) -> Job:
    return job_create(
        kind="sample_gold",
        project=clustering.project,
        created_by=created_by,
        params={**params, "clustering_run_id": clustering.id},
        enqueue=enqueue,
    )


@transaction.atomic
def embedding_run_record(*, project: Project, job: Job | None, vectors_file, **fields: Any) -> EmbeddingRun:
    run = EmbeddingRun(project=project, job=job, **fields)
    run.vectors.save(vectors_file.name, vectors_file, save=False)
    run.save()
    return run


def embedding_part_store(*, name: str, vectors_file) -> None:
    """A shard's vectors, at the name the embedding job will look for (a part left by an attempt
    that died half-written is replaced)."""
    if default_storage.exists(name):
        default_storage.delete(name)
    stored = default_storage.save(name, vectors_file)
    if stored != name:  # another attempt of the same shard stored it in between: keep one
        default_storage.delete(stored)


def embedding_parts_delete(*, names: list[str]) -> None:
    """The shards' parts, once the embedding run holds their vectors."""
    for name in names:
        default_storage.delete(name)


@transaction.atomic
def clustering_run_record(
    *,
    embedding_run: EmbeddingRun,
    job: Job | None,
    params: dict[str, Any],
    asset_ids: list[int],
    xy: list[tuple[float, float]],
    labels: list[int],
    seconds: dict[str, float],
) -> ClusteringRun:
    sizes: dict[str, int] = {}
    for label in labels:
        if label != -1:
            sizes[str(label)] = sizes.get(str(label), 0) + 1
    run = ClusteringRun.objects.create(
        project=embedding_run.project,
        embedding_run=embedding_run,
        job=job,
        params=params,
        point_count=len(labels),
        n_clusters=len(sizes),
        noise_count=sum(1 for label in labels if label == -1),
        cluster_sizes=dict(sorted(sizes.items(), key=lambda item: int(item[0]))),
        seconds={key: round(value, 3) for key, value in seconds.items()},
    )
    existing = set(Asset.objects.filter(id__in=asset_ids).values_list("id", flat=True))
    ProjectionPoint.objects.bulk_create(
        [
            ProjectionPoint(clustering=run, asset_id=asset_id, x=float(x), y=float(y), cluster=int(label))
            for asset_id, (x, y), label in zip(asset_ids, xy, labels, strict=True)
            if asset_id in existing  # an asset deleted since embedding has no point
        ],
        batch_size=2000,
    )
    return run


def gold_set_create(
    *,
    project: Project,
    clustering: ClusteringRun | None,
    picks: list[tuple[int, int | None, str]],
    params: dict[str, Any],
    created_by: User | None,
) -> GoldSet:
    """A new version holding (asset_id, cluster, source) picks; earlier versions stay as they were."""
    for attempt in range(5):  # two samplings at once both pick max+1: the loser takes the next number
        try:
            with transaction.atomic():
                return _gold_set_insert(project, clustering, picks, params, created_by)
        except IntegrityError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _gold_set_insert(project, clustering, picks, params, created_by) -> GoldSet:
    version = (GoldSet.objects.filter(project=project).aggregate(Max("version"))["version__max"] or 0) + 1
    gold_set = GoldSet.objects.create(
        project=project, version=version, clustering=clustering, params=params, created_by=created_by
    )
    GoldItem.objects.bulk_create(
        [
            GoldItem(gold_set=gold_set, asset_id=asset_id, cluster=cluster, source=source, added_by=created_by)
            for asset_id, cluster, source in picks
        ]
    )
    return gold_set


def _require_draft(gold_set: GoldSet) -> None:
    if gold_set.status != GoldSetStatus.DRAFT:
        raise InvalidStateError(f"{gold_set} is frozen (labelling has started); sample a new version to change it.")


@transaction.atomic
def gold_item_add(*, gold_set: GoldSet, asset: Asset, added_by: User | None) -> GoldItem:
    gold_set = GoldSet.objects.select_for_update().get(id=gold_set.id)
    _require_draft(gold_set)
    if asset.project_id != gold_set.project_id:
        raise ApplicationError("That asset belongs to another project.")
    if GoldItem.objects.filter(gold_set=gold_set, asset=asset).exists():
        raise ApplicationError(f"{asset} is already in {gold_set}.")
    cluster = None
    if gold_set.clustering_id:
        point = ProjectionPoint.objects.filter(clustering_id=gold_set.clustering_id, asset=asset).first()
        cluster = point.cluster if point else None
    return GoldItem.objects.create(
        gold_set=gold_set, asset=asset, cluster=cluster, source=GoldItemSource.MANUAL, added_by=added_by
    )


@transaction.atomic
def gold_item_remove(*, gold_set: GoldSet, item_id: int) -> None:
    gold_set = GoldSet.objects.select_for_update().get(id=gold_set.id)
    _require_draft(gold_set)
    deleted, _ = GoldItem.objects.filter(gold_set=gold_set, id=item_id).delete()
    if not deleted:
        raise ApplicationError("No such item in this gold set.")


@transaction.atomic
def gold_set_freeze(*, gold_set: GoldSet) -> GoldSet:
    gold_set = GoldSet.objects.select_for_update().get(id=gold_set.id)
    _require_draft(gold_set)
    if not gold_set.items.exists():
        raise ApplicationError("An empty gold set cannot be frozen.")
    gold_set.status = GoldSetStatus.FROZEN
    gold_set.frozen_at = timezone.now()
    gold_set.save(update_fields=["status", "frozen_at", "updated_at"])
    return gold_set
