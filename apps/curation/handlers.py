"""Curation jobs: embed (CLIP), cluster (UMAP + HDBSCAN), sample_gold (one frame per cluster).

torch, open_clip, umap and hdbscan are imported inside the handlers: this module is loaded by
the web process too (to register the kinds), which must never import them.
"""

from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage

from apps.core.files import local_paths
from apps.curation import services
from apps.curation.models import ClusteringRun, EmbeddingRun
from apps.curation.vectors import (
    embedding_part_name,
    vector_ids_load,
    vectors_load,
    vectors_load_file,
    vectors_to_file,
)
from apps.jobs.kinds import EMBED_QUEUE, job_kind, shard_params
from apps.jobs.models import Job
from apps.jobs.runner import JobContext
from apps.jobs.shards import shards_or_whole
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


def _clip_spec(project):
    from workers.vision.profiles import clip_spec

    return clip_spec(settings.MODEL_PROFILE, settings.MODELS_DIR, project.clip_model_name, project.clip_pretrained)


def _embed_assets(spec, assets: list[Asset], ctx: JobContext) -> Any:
    """Embed these frames with the model loaded once, reporting progress; an EmbeddingResult."""
    from workers.vision.clip import load_clip, resolve_device

    ctx.progress(0.0, f"Loading {spec.model_name}")
    device = resolve_device(embedding_config().device)
    loaded = load_clip(spec, device)
    ctx.log(f"{spec.key}: {len(assets)} frames to embed on {device}")
    # Local copies of only these frames (at most a shard's): from S3 a run never copies them all.
    with local_paths([asset.image for asset in assets]) as paths:
        items = [(asset.id, path) for asset, path in zip(assets, paths, strict=True)]
        return embed_files(
            spec,
            items,
            on_progress=lambda done, total: ctx.progress(done / max(total, 1), f"Embedded {done} of {total}"),
            loaded=loaded,
        )


def _embed_shard_params(params: dict[str, Any]) -> dict[str, Any]:
    """A shard of an embedding: its positions among the frames to embed, the asset ids they lie
    between [from_id, to_id), and the run whose vectors are reused (those frames are skipped)."""
    cleaned = shard_params(None)(params)
    for key in ("from_id", "to_id", "previous_run_id"):
        value = params.get(key)
        if key == "previous_run_id" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer (a row id)")
        cleaned[key] = value
    return cleaned


@job_kind(
    name="embed",
    label="Embed frames (CLIP)",
    queue=EMBED_QUEUE,
    clean_params=lambda params: {},
    produces=("gold-set curation", "curation:overview", None),
)
def embed(job: Job, ctx: JobContext) -> dict[str, Any]:
    """Embed the frames that the model's previous run has no vector of, reuse the rest. More than
    RUN_SHARD_FRAMES new frames are split into shards (`embed_shard`) that any number of embedding
    workers take at once, each storing its vectors as a part; this job joins them into the run."""
    import numpy as np

    project = job.project
    spec = _clip_spec(project)
    previous = EmbeddingRun.objects.filter(project=project, model_key=spec.key).order_by("-id").first()
    current_ids = set(Asset.objects.filter(project=project).values_list("id", flat=True))
    known_ids = [i for i in vector_ids_load(previous) if i in current_ids] if previous else []
    known = set(known_ids)
    new_ids = sorted(current_ids - known)
    if previous is not None and not new_ids and len(known_ids) == previous.count:
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
    span = shards_or_whole(
        job,
        ctx,
        total=len(new_ids),
        shard_kind="embed_shard",
        params_for=lambda start, stop: {
            "start": start,
            "stop": stop,
            "from_id": new_ids[start],
            "to_id": new_ids[stop - 1] + 1,
            **({"previous_run_id": previous.id} if previous else {}),
        },
        what="frames to embed",
    )
    if span is not None:
        result = _embed_assets(spec, list(Asset.objects.filter(id__in=new_ids).order_by("id")), ctx)
        embedded_ids, parts, failed = result.asset_ids, [result.vectors], result.failed
        device, seconds = result.device, result.seconds
    else:
        shards = list(job.children.filter(kind="embed_shard").order_by("id"))
        embedded_ids, parts, failed, device, seconds = [], [], {}, "", 0.0
        for shard in shards:
            ids, vectors, _ = vectors_load_file(shard.result["part"])
            fresh = [row for row, asset_id in enumerate(ids) if asset_id not in known]  # another run may hold some
            embedded_ids += [ids[row] for row in fresh]
            parts.append(vectors[fresh])
            failed.update({int(k): v for k, v in shard.result["failed"].items()})
            device, seconds = shard.result["device"], seconds + shard.result["seconds"]
    ctx.progress(0.99, f"Storing {len(known_ids) + len(embedded_ids)} vectors")
    if known_ids:
        previous_ids, previous_vectors = vectors_load(previous)
        row_of = {asset_id: row for row, asset_id in enumerate(previous_ids)}
        parts.insert(0, previous_vectors[[row_of[asset_id] for asset_id in known_ids]])
    dim = max((part.shape[1] for part in parts), default=0)
    vectors = np.concatenate([part.reshape(-1, dim) for part in parts]).astype(np.float32, copy=False)
    run = services.embedding_run_record(
        project=project,
        job=job,
        vectors_file=vectors_to_file(known_ids + embedded_ids, vectors),
        model_key=spec.key,
        model_name=spec.model_name,
        pretrained=spec.pretrained or "",
        count=len(vectors),
        dim=dim,
        embedded=len(embedded_ids),
        reused=len(known_ids),
        failed={str(k): v for k, v in failed.items()},
        device=device,
        seconds=round(seconds, 3),
    )
    if span is None:
        services.embedding_parts_delete(names=[shard.result["part"] for shard in shards])
    return {
        "embedding_run_id": run.id,
        "embedded": run.embedded,
        "reused": run.reused,
        "failed": len(failed),
        "images_per_second": round(len(embedded_ids) / seconds, 2) if seconds else 0.0,
        "model": spec.key,
        **({"shards": len(shards)} if span is None else {}),
    }


@job_kind(
    name="embed_shard",
    label="Embed frames (CLIP) (a shard)",
    queue=EMBED_QUEUE,
    clean_params=_embed_shard_params,
    shard=True,
)
def embed_shard(job: Job, ctx: JobContext) -> dict[str, Any]:
    """One shard of an embedding: the frames between two asset ids that the previous run has no
    vector of, stored as a part for the embedding job to join. A shard retried after its part
    was stored (its worker died before it ended) keeps that part."""
    params, project = job.params, job.project
    name = embedding_part_name(project_id=project.id, parent_id=job.parent_id, start=params["start"])
    if not default_storage.exists(name):
        previous = EmbeddingRun.objects.filter(id=params.get("previous_run_id"), project=project).first()
        known = set(vector_ids_load(previous)) if previous else set()
        assets = Asset.objects.filter(project=project, id__gte=params["from_id"], id__lt=params["to_id"])
        result = _embed_assets(_clip_spec(project), [a for a in assets.order_by("id") if a.id not in known], ctx)
        summary = {"failed": {str(k): v for k, v in result.failed.items()}, "device": result.device}
        part = vectors_to_file(result.asset_ids, result.vectors, meta={**summary, "seconds": result.seconds})
        services.embedding_part_store(name=name, vectors_file=part)
    ids, _, meta = vectors_load_file(name)
    return {"part": name, "embedded": len(ids), "start": params["start"], **meta}


@job_kind(
    name="cluster",
    label="Project + cluster (UMAP, HDBSCAN)",
    queue="cpu",
    clean_params=_clean_cluster_params,
    produces=("the clustering", "curation:clustering", "clustering_run_id"),
)
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


@job_kind(
    name="sample_gold",
    label="Sample the gold set",
    queue="cpu",
    clean_params=_clean_gold_params,
    produces=("the gold set", "curation:gold_set", "gold_set_id"),
)
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
