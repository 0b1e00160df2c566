"""Project embeddings to 2-D with UMAP and cluster the projection with HDBSCAN (paper §4).

Deterministic for a given seed. At large N the vectors are first reduced with PCA, which
keeps UMAP's neighbour search fast (100k × 512 in minutes on 2 cores) and changes little.
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

    @property
    def n_clusters(self) -> int:
        return int(len(set(self.labels.tolist()) - {-1}))

    @property
    def noise_share(self) -> float:
        return float((self.labels == -1).mean()) if len(self.labels) else 0.0

    @property
    def cluster_sizes(self) -> dict[int, int]:
        return dict(sorted(Counter(int(label) for label in self.labels if label != -1).items()))


def project_and_cluster(vectors: np.ndarray, config: ClusteringConfig = ClusteringConfig()) -> ClusteringResult:
    import hdbscan
    import umap

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
    started = time.perf_counter()
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(config.n_neighbors, n - 1),
        min_dist=config.min_dist,
        metric=config.metric,
        random_state=config.seed,  # also makes UMAP single-threaded: the price of determinism
        n_jobs=1,
    )
    xy = reducer.fit_transform(data).astype(np.float32)
    seconds["umap"] = time.perf_counter() - started
    started = time.perf_counter()
    labels = hdbscan.HDBSCAN(
        min_cluster_size=config.min_cluster_size, min_samples=config.min_samples, core_dist_n_jobs=1
    ).fit_predict(xy)
    seconds["hdbscan"] = time.perf_counter() - started
    return ClusteringResult(xy=xy, labels=labels.astype(np.int32), seconds=seconds)
