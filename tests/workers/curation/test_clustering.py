import numpy as np
import pytest

from workers.curation.cluster import project_and_cluster
from workers.curation.config import ClusteringConfig, ClusteringError, GoldSamplingConfig
from workers.curation.gold import sample_gold


def blobs(n_blobs=6, per_blob=25, dim=32, seed=0, noise_points=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_blobs, dim)) * 4
    points = [center + 0.1 * rng.normal(size=(per_blob, dim)) for center in centers]
    if noise_points:
        points.append(rng.uniform(-12, 12, size=(noise_points, dim)))
    vectors = np.concatenate(points).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def clustered():
    vectors = blobs()
    return vectors, project_and_cluster(vectors, ClusteringConfig(seed=3, min_cluster_size=5))


def test_finds_the_blobs_and_is_deterministic_under_a_seed(clustered):
    vectors, result = clustered
    assert result.n_clusters == 6
    assert result.xy.shape == (150, 2) and result.xy.dtype == np.float32
    again = project_and_cluster(vectors, ClusteringConfig(seed=3, min_cluster_size=5))
    np.testing.assert_array_equal(result.labels, again.labels)
    np.testing.assert_array_equal(result.xy, again.xy)
    assert sum(result.cluster_sizes.values()) + round(result.noise_share * 150) == 150


def test_one_pick_per_cluster_and_noise_is_excluded(clustered):
    vectors, result = clustered
    labels = result.labels.copy()
    labels[:7] = -1  # pretend some frames were noise
    ids = list(range(1000, 1000 + len(vectors)))
    picks = sample_gold(ids, vectors, labels)
    clusters = [pick.cluster for pick in picks]
    assert sorted(clusters) == sorted(set(labels.tolist()) - {-1})  # exactly one per cluster
    assert all(labels[ids.index(pick.asset_id)] == pick.cluster for pick in picks)
    assert not any(pick.cluster == -1 for pick in picks)


def test_centroid_pick_is_the_member_nearest_the_cluster_mean(clustered):
    vectors, result = clustered
    ids = list(range(len(vectors)))
    picks = sample_gold(ids, vectors, result.labels)
    assert len(picks) == result.n_clusters == 6
    for pick in picks:
        members = np.flatnonzero(result.labels == pick.cluster)
        centroid = vectors[members].mean(axis=0)
        best = members[np.argmax(vectors[members] @ (centroid / np.linalg.norm(centroid)))]
        assert pick.asset_id == best


def test_noise_picks_target_size_and_random_strategy(clustered):
    vectors, result = clustered
    labels = result.labels.copy()
    labels[:10] = -1
    ids = list(range(len(vectors)))
    with_noise = sample_gold(ids, vectors, labels, GoldSamplingConfig(noise_picks=3, seed=1))
    assert sum(p.cluster == -1 for p in with_noise) == 3 and all(
        labels[p.asset_id] == -1 for p in with_noise if p.cluster == -1
    )
    assert len(sample_gold(ids, vectors, labels, GoldSamplingConfig(target_size=4))) == 4
    topped = sample_gold(ids, vectors, labels, GoldSamplingConfig(target_size=20))
    assert len(topped) == 20 and len({p.asset_id for p in topped}) == 20
    first = sample_gold(ids, vectors, labels, GoldSamplingConfig(strategy="random", seed=5))
    assert first == sample_gold(ids, vectors, labels, GoldSamplingConfig(strategy="random", seed=5))
    other_seed = sample_gold(ids, vectors, labels, GoldSamplingConfig(strategy="random", seed=6))
    centroids = sample_gold(ids, vectors, labels)
    assert {p.cluster for p in first} == {p.cluster for p in centroids}  # still one per cluster
    picked = [p.asset_id for p in first]
    assert picked != [p.asset_id for p in other_seed] and picked != [p.asset_id for p in centroids]


def test_bad_parameters_and_too_few_frames_are_clear_errors():
    with pytest.raises(ClusteringError, match="n_neighbors"):
        ClusteringConfig(n_neighbors=1)
    with pytest.raises(ClusteringError, match="metric"):
        ClusteringConfig(metric="hamming-ish")
    with pytest.raises(ClusteringError, match="needs at least 5 frames; there are 3"):
        project_and_cluster(blobs(n_blobs=1, per_blob=3), ClusteringConfig())
    with pytest.raises(ValueError, match="strategy"):
        GoldSamplingConfig(strategy="best")


def test_above_fit_sample_umap_learns_from_a_sample_and_places_the_rest():
    vectors = blobs(n_blobs=6, per_blob=400, seed=4)  # 2,400 frames, 1,000 of them fitted
    truth = np.repeat(np.arange(6), 400)
    sampled = project_and_cluster(vectors, ClusteringConfig(seed=3, min_cluster_size=20, fit_sample=1000))
    assert sampled.fitted_on == 1000 and set(sampled.seconds) >= {"umap_fit", "umap_transform", "hdbscan"}
    assert sampled.xy.shape == (2400, 2) and np.isfinite(sampled.xy).all()
    assert len(np.unique(sampled.xy, axis=0)) > 2000  # every frame placed, not left at a default
    assert sampled.n_clusters == 6
    # Each true blob lands in one cluster, frames placed by `transform` included.
    from sklearn.metrics import adjusted_rand_score

    kept = sampled.labels != -1
    assert kept.mean() > 0.9 and adjusted_rand_score(truth[kept], sampled.labels[kept]) > 0.99
    again = project_and_cluster(vectors, ClusteringConfig(seed=3, min_cluster_size=20, fit_sample=1000))
    np.testing.assert_array_equal(sampled.labels, again.labels)
    whole = project_and_cluster(vectors, ClusteringConfig(seed=3, min_cluster_size=20))
    assert whole.fitted_on == 2400 and "umap" in whole.seconds


def test_with_cuml_installed_and_a_gpu_visible_the_gpu_backend_does_the_work(monkeypatch):
    """No GPU here: a stand-in `cuml` package (umap-learn and hdbscan under cuML's names and
    signatures) checks only that the dispatch calls cuML's classes with the settings."""
    import sys
    import types

    import hdbscan
    import umap

    from workers.curation import cluster

    made = []

    class UMAP:
        def __init__(self, **kwargs):
            made.append(("UMAP", kwargs))
            self.fit_transform = umap.UMAP(**kwargs).fit_transform

    class HDBSCAN:
        def __init__(self, **kwargs):
            made.append(("HDBSCAN", kwargs))
            self.fit_predict = hdbscan.HDBSCAN(**kwargs).fit_predict

    fake = types.ModuleType("cuml")
    fake.manifold = types.SimpleNamespace(UMAP=UMAP)
    fake.cluster = types.SimpleNamespace(HDBSCAN=HDBSCAN)
    monkeypatch.setitem(sys.modules, "cuml", fake)
    monkeypatch.setitem(sys.modules, "cuml.manifold", fake.manifold)
    monkeypatch.setitem(sys.modules, "cuml.cluster", fake.cluster)
    monkeypatch.setattr(cluster, "gpu_backend_available", lambda: True)
    result = cluster.project_and_cluster(blobs(), ClusteringConfig(seed=3, min_cluster_size=5))
    assert result.backend == "cuML (GPU)" and result.n_clusters == 6 and result.fitted_on == 150
    assert made == [
        ("UMAP", {"n_components": 2, "n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "random_state": 3}),
        ("HDBSCAN", {"min_cluster_size": 5, "min_samples": None}),
    ]


def test_without_cuml_the_cpu_path_runs():
    from workers.curation.cluster import gpu_backend_available

    assert gpu_backend_available() is False  # this machine: no cuML, no GPU
