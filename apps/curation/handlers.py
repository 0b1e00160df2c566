"""Curation jobs: embed (CLIP), cluster (UMAP + HDBSCAN), sample_gold (one frame per cluster).

torch, open_clip, umap and hdbscan are imported inside the handlers: this module is loaded by
the web process too (to register the kinds), which must never import them.
"""

from typing import Any

from django.conf import settings

from apps.core.files import local_paths
from apps.curation import services
from apps.curation.models import ClusteringRun, EmbeddingRun
from apps.curation.vectors import vectors_load, vectors_to_file
from apps.jobs.kinds import EMBED_QUEUE, job_kind
from apps.jobs.models import Job
from apps.jobs.runner import JobContext
from apps.media.models import Asset

CLUSTER_PARAM_TYPES = {
    "n_neighbors": int,
    "min_dist": float,
    "metric": str,
    "seed": int,
    "min_cluster_size": int,
    "min_samples": int,
}
GOLD_PARAM_TYPES = {"strategy": str, "seed": int, "noise_picks": int, "target_size": int}


def _typed(params: dict[str, Any], types: dict[str, type], keep: tuple[str, ...]) -> dict[str, Any]:
    unknown = set(params) - set(types) - set(keep)
    if unknown:
        raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    cleaned = {key: params[key] for key in keep if key in params}
    for key, kind in types.items():
        if params.get(key) not in (None, ""):
            cleaned[key] = kind(params[key])
    return cleaned


def _clean_cluster_params(params: dict[str, Any]) -> dict[str, Any]:
    from workers.curation.config import ClusteringConfig

    cleaned = _typed(params, CLUSTER_PARAM_TYPES, keep=("embedding_run_id",))
    config = ClusteringConfig(**{k: v for k, v in cleaned.items() if k in CLUSTER_PARAM_TYPES})
    return {**config.as_dict(), "embedding_run_id": cleaned.get("embedding_run_id")}


def _clean_gold_params(params: dict[str, Any]) -> dict[str, Any]:
    from dataclasses import asdict

    from workers.curation.config import GoldSamplingConfig

    cleaned = _typed(params, GOLD_PARAM_TYPES, keep=("clustering_run_id",))
    config = GoldSamplingConfig(**{k: v for k, v in cleaned.items() if k in GOLD_PARAM_TYPES})
    return {**asdict(config), "clustering_run_id": cleaned.get("clustering_run_id")}


def embedding_config():
    """The embed job's batch and decode threads. Threads work in every pool, Celery's daemonic
    prefork children included (they may not start processes), so no pool decodes one at a time."""
    from workers.vision.clip import EmbeddingConfig

    return EmbeddingConfig(batch_size=settings.EMBED_BATCH_SIZE, num_workers=settings.EMBED_NUM_WORKERS)


def embed_files(spec, items, on_progress=None, loaded=None):
    """The embed job's embedding path: what the handler runs, and what bench/embed_bench.py times
    inside a daemonic process. `items` are (asset id, local image path) pairs."""
    from workers.vision.clip import embed_images, load_clip, resolve_device

    config = embedding_config()
    loaded = loaded or load_clip(spec, resolve_device(config.device))
    return embed_images(spec, items, config, on_progress=on_progress, loaded=loaded)


@job_kind(name="embed", label="Embed frames (CLIP)", queue=EMBED_QUEUE, clean_params=lambda params: {})
def embed(job: Job, ctx: JobContext) -> dict[str, Any]:
    import numpy as np

    from workers.vision.clip import load_clip, resolve_device
    from workers.vision.profiles import clip_spec

    project = job.project
    spec = clip_spec(settings.MODEL_PROFILE, settings.MODELS_DIR, project.clip_model_name, project.clip_pretrained)
    previous = EmbeddingRun.objects.filter(project=project, model_key=spec.key).order_by("-id").first()
    current_ids = set(Asset.objects.filter(project=project).values_list("id", flat=True))
    known_ids, known_vectors = vectors_load(previous) if previous else ([], None)
    keep = [index for index, asset_id in enumerate(known_ids) if asset_id in current_ids]
    known_ids = [known_ids[index] for index in keep]
    new_assets = list(Asset.objects.filter(project=project).exclude(id__in=known_ids).order_by("id"))
    if previous is not None and not new_assets and len(known_ids) == previous.count:
        # Every frame has its vector in that run already: a second run would copy it, and a
        # clustering of it would repeat one made before.
        ctx.log(f"{spec.key}: run #{previous.id} already holds all {previous.count} frames")
        return {
            "embedding_run_id": previous.id,
            "embedded": 0,
            "reused": previous.count,
            "failed": 0,
            "images_per_second": 0.0,
            "model": spec.key,
            "up_to_date": True,
        }
    ctx.progress(0.0, f"Loading {spec.model_name}")
    device = resolve_device(embedding_config().device)
    loaded = load_clip(spec, device)
    ctx.log(f"{spec.key}: {len(known_ids)} vectors reused, {len(new_assets)} assets to embed on {device}")

    with local_paths([asset.image for asset in new_assets]) as paths:
        items = [(asset.id, path) for asset, path in zip(new_assets, paths, strict=True)]
        result = embed_files(
            spec,
            items,
            on_progress=lambda done, total: ctx.progress(done / max(total, 1), f"Embedded {done} of {total}"),
            loaded=loaded,
        )
    parts = [known_vectors[keep]] if known_ids else []
    if len(result.asset_ids):
        parts.append(result.vectors)
    dim = result.vectors.shape[1]
    vectors = np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, dim), dtype=np.float32)
    run = services.embedding_run_record(
        project=project,
        job=job,
        vectors_file=vectors_to_file(known_ids + result.asset_ids, vectors),
        model_key=spec.key,
        model_name=spec.model_name,
        pretrained=spec.pretrained or "",
        count=len(vectors),
        dim=dim,
        embedded=len(result.asset_ids),
        reused=len(known_ids),
        failed={str(k): v for k, v in result.failed.items()},
        device=result.device,
        seconds=round(result.seconds, 3),
    )
    return {
        "embedding_run_id": run.id,
        "embedded": run.embedded,
        "reused": run.reused,
        "failed": len(result.failed),
        "images_per_second": round(result.images_per_second, 2),
        "model": spec.key,
    }


@job_kind(name="cluster", label="Project + cluster (UMAP, HDBSCAN)", queue="cpu", clean_params=_clean_cluster_params)
def cluster(job: Job, ctx: JobContext) -> dict[str, Any]:
    from workers.curation.cluster import project_and_cluster
    from workers.curation.config import ClusteringConfig

    params = dict(job.params)
    embedding_run = EmbeddingRun.objects.get(id=params.pop("embedding_run_id"), project=job.project)
    asset_ids, vectors = vectors_load(embedding_run)
    ctx.progress(0.1, f"UMAP on {len(asset_ids)} vectors")
    result = project_and_cluster(vectors, ClusteringConfig(**params))
    if result.fitted_on < len(asset_ids):
        ctx.log(f"UMAP learned its projection from a seeded sample of {result.fitted_on:,} frames and placed the rest")
    ctx.progress(0.9, f"{result.n_clusters} clusters ({result.backend}); saving points")
    run = services.clustering_run_record(
        embedding_run=embedding_run,
        job=job,
        params=params,
        asset_ids=asset_ids,
        xy=result.xy.tolist(),
        labels=result.labels.tolist(),
        seconds=result.seconds,
    )
    return {
        "clustering_run_id": run.id,
        "points": run.point_count,
        "clusters": run.n_clusters,
        "noise_share": round(run.noise_share, 4),
        "backend": result.backend,
        "umap_fitted_on": result.fitted_on,
    }


@job_kind(name="sample_gold", label="Sample the gold set", queue="cpu", clean_params=_clean_gold_params)
def sample_gold(job: Job, ctx: JobContext) -> dict[str, Any]:
    import numpy as np

    from workers.curation.config import GoldSamplingConfig
    from workers.curation.gold import sample_gold

    params = dict(job.params)
    clustering = ClusteringRun.objects.get(id=params.pop("clustering_run_id"), project=job.project)
    points = list(clustering.points.order_by("asset_id").values_list("asset_id", "cluster"))
    vector_ids, vectors = vectors_load(clustering.embedding_run)
    row_of = {asset_id: row for row, asset_id in enumerate(vector_ids)}
    ids = [asset_id for asset_id, _ in points]
    picks = sample_gold(
        ids,
        vectors[[row_of[asset_id] for asset_id in ids]],
        np.asarray([label for _, label in points]),
        GoldSamplingConfig(**params),
    )
    gold_set = services.gold_set_create(
        project=job.project,
        clustering=clustering,
        picks=[(pick.asset_id, pick.cluster, pick.reason) for pick in picks],
        params=params,
        created_by=job.created_by,
    )
    return {"gold_set_id": gold_set.id, "version": gold_set.version, "size": len(picks)}
