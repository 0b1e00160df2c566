"""Project embeddings to 2-D with UMAP and cluster the projection with HDBSCAN (paper §4).

Deterministic for a given seed. At large N the vectors are first reduced with PCA, which keeps
UMAP's neighbour search fast and changes little; above `fit_sample` frames UMAP learns the
projection from a seeded sample and places the rest with `transform`, so a million frames take
minutes on 2 cores (bench/cluster_bench.py). Where RAPIDS cuML is installed and a CUDA device is
visible, its GPU UMAP and HDBSCAN (the same algorithms, the same parameters) do the work instead.
"""

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from workers.curation.config import ClusteringConfig, ClusteringError


@dataclass
class ClusteringResult:
    xy: np.ndarray  # (N, 2) float32
    labels: np.ndarray  # (N,) int; -1 is noise
    seconds: dict[str, float] = field(default_factory=dict)
    backend: str = "umap-learn + hdbscan"
    fitted_on: int = 0  # frames UMAP learned the projection from (all of them unless sampled)

    @property
    def n_clusters(self) -> int:
        return int(len(set(self.labels.tolist()) - {-1}))

    @property
    def noise_share(self) -> float:
        return float((self.labels == -1).mean()) if len(self.labels) else 0.0

    @property
    def cluster_sizes(self) -> dict[int, int]:
        return dict(sorted(Counter(int(label) for label in self.labels if label != -1).items()))


def gpu_backend_available() -> bool:
    """RAPIDS cuML installed and a CUDA device visible (cuML imports only where CUDA works)."""
    import importlib.util

    if importlib.util.find_spec("cuml") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device: the CPU path
        return False


def project_and_cluster(vectors: np.ndarray, config: ClusteringConfig = ClusteringConfig()) -> ClusteringResult:
    n = len(vectors)
    if n < max(config.min_cluster_size, 4):
        raise ClusteringError(f"Clustering needs at least {max(config.min_cluster_size, 4)} frames; there are {n}.")
    data = np.asarray(vectors, dtype=np.float32)
    seconds: dict[str, float] = {}
    if n > config.pca_above and data.shape[1] > config.pca_components:
        from sklearn.decomposition import PCA

        started = time.perf_counter()
        data = PCA(n_components=config.pca_components, random_state=config.seed).fit_transform(data)
        seconds["pca"] = time.perf_counter() - started
    if gpu_backend_available():
        return _on_gpu(data, config, seconds)
    return _on_cpu(data, config, seconds)


def _umap_settings(n: int, config: ClusteringConfig) -> dict:
    return {
        "n_components": 2,
        "n_neighbors": min(config.n_neighbors, n - 1),
        "min_dist": config.min_dist,
        "metric": config.metric,
        "random_state": config.seed,
    }


def _on_cpu(data: np.ndarray, config: ClusteringConfig, seconds: dict[str, float]) -> ClusteringResult:
    import hdbscan
    import umap

    n = len(data)
    started = time.perf_counter()
    # A fixed seed also makes UMAP single-threaded: the price of determinism.
    reducer = umap.UMAP(**_umap_settings(min(n, config.fit_sample), config), n_jobs=1)
    if n > config.fit_sample:
        fitted = np.sort(np.random.default_rng(config.seed).choice(n, size=config.fit_sample, replace=False))
        xy = np.empty((n, 2), dtype=np.float32)
        xy[fitted] = reducer.fit_transform(data[fitted])
        seconds["umap_fit"] = time.perf_counter() - started
        started = time.perf_counter()
        rest = np.setdiff1d(np.arange(n), fitted, assume_unique=True)
        xy[rest] = reducer.transform(data[rest])
        seconds["umap_transform"] = time.perf_counter() - started
    else:
        fitted = np.arange(n)
        xy = reducer.fit_transform(data).astype(np.float32)
        seconds["umap"] = time.perf_counter() - started
    started = time.perf_counter()
    labels = hdbscan.HDBSCAN(
        min_cluster_size=config.min_cluster_size, min_samples=config.min_samples, core_dist_n_jobs=1
    ).fit_predict(xy)
    seconds["hdbscan"] = time.perf_counter() - started
    return ClusteringResult(xy=xy, labels=labels.astype(np.int32), seconds=seconds, fitted_on=len(fitted))


def _on_gpu(data: np.ndarray, config: ClusteringConfig, seconds: dict[str, float]) -> ClusteringResult:
    """cuML's UMAP (fitted on every frame: a GPU fits a million in seconds) and HDBSCAN."""
    from cuml.cluster import HDBSCAN
    from cuml.manifold import UMAP

    started = time.perf_counter()
    xy = np.asarray(UMAP(**_umap_settings(len(data), config)).fit_transform(data), dtype=np.float32)
    seconds["umap"] = time.perf_counter() - started
    started = time.perf_counter()
    clusterer = HDBSCAN(min_cluster_size=config.min_cluster_size, min_samples=config.min_samples)
    labels = np.asarray(clusterer.fit_predict(xy))
    seconds["hdbscan"] = time.perf_counter() - started
    return ClusteringResult(
        xy=xy, labels=labels.astype(np.int32), seconds=seconds, backend="cuML (GPU)", fitted_on=len(data)
    )
