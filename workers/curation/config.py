"""Curation settings as plain dataclasses (no numpy): the web process validates launches with them."""

from dataclasses import asdict, dataclass

METRICS = ("cosine", "euclidean", "correlation", "manhattan")


class ClusteringError(ValueError):
    pass


@dataclass(frozen=True)
class ClusteringConfig:
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    seed: int = 42
    min_cluster_size: int = 5
    min_samples: int | None = None
    pca_components: int = 50
    pca_above: int = 5000  # PCA only pays off for large N
    # Above this many frames UMAP learns its projection from a seeded sample of this size and
    # places the other frames with `transform` (bench/RESULTS.md: the effect on the clusters).
    fit_sample: int = 200_000

    def __post_init__(self) -> None:
        if not 2 <= self.n_neighbors <= 200:
            raise ClusteringError("n_neighbors must be between 2 and 200")
        if not 0.0 <= self.min_dist <= 1.0:
            raise ClusteringError("min_dist must be between 0 and 1")
        if self.metric not in METRICS:
            raise ClusteringError(f"metric must be one of {', '.join(METRICS)}")
        if self.min_cluster_size < 2:
            raise ClusteringError("min_cluster_size must be at least 2")
        if self.min_samples is not None and self.min_samples < 1:
            raise ClusteringError("min_samples must be at least 1")
        if self.fit_sample < 1000:
            raise ClusteringError("fit_sample must be at least 1000")

    def as_dict(self) -> dict:
        return asdict(self)


STRATEGIES = ("centroid", "random")


@dataclass(frozen=True)
class GoldSamplingConfig:
    strategy: str = "centroid"  # nearest to the cluster's mean embedding, or a seeded random member
    seed: int = 0
    noise_picks: int = 0  # extra frames drawn from HDBSCAN's noise
    target_size: int | None = None  # trim to the largest clusters, or top up from the largest ones

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}")
        if self.noise_picks < 0:
            raise ValueError("noise_picks must be ≥ 0")
        if self.target_size is not None and self.target_size < 1:
            raise ValueError("target_size must be ≥ 1")
