"""UMAP + HDBSCAN wall time on synthetic 512-d CLIP-like vectors (clusters on the unit sphere).

    .venv/bin/python bench/cluster_bench.py [--sizes 2000 20000 100000 1000000] [--compare-at 300000]

Naive baseline: UMAP straight on the 512-d vectors (no PCA), as a first script would do. Product:
`workers.curation.cluster.project_and_cluster` (PCA to 50 dims above 5,000 points; above
`fit_sample` = 200,000 points UMAP is fitted on a seeded sample and `transform` places the rest).
Both use the same seed; the 2k row is measured "once warm" (numba's compilation is done by a
first call). `--compare-at N` clusters N points twice — UMAP fitted on all of them, and on a
sample of N/3 — and reports the adjusted Rand index of each against the synthetic truth and
against each other: the effect of the sampled fit on the clusters.
"""

import argparse
import os
import resource
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from workers.curation.cluster import project_and_cluster  # noqa: E402
from workers.curation.config import ClusteringConfig  # noqa: E402


def synthetic(n: int, dim: int = 512, clusters: int = 300, seed: int = 0, with_truth: bool = False):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, size=n)
    vectors = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # in chunks: a million float64 rows would be 4 GB at once
        part = slice(start, min(start + 100_000, n))
        vectors[part] = centers[labels[part]] + 0.35 * rng.normal(size=(part.stop - part.start, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors, labels) if with_truth else vectors


def compare_sampled_fit(n: int) -> None:
    """The clusters of a sampled fit against a full one and against the truth (adjusted Rand)."""
    from sklearn.metrics import adjusted_rand_score

    vectors, truth = synthetic(n, with_truth=True)
    full = project_and_cluster(vectors, ClusteringConfig(seed=1, fit_sample=n))
    sampled = project_and_cluster(vectors, ClusteringConfig(seed=1, fit_sample=n // 3))
    for name, result in (("full fit", full), (f"fit on {n // 3:,}", sampled)):
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
        kept = result.labels != -1
        print(
            f"N={n}: {name}: {result.n_clusters} clusters, noise {result.noise_share:.1%}, "
            f"ARI vs truth {adjusted_rand_score(truth, result.labels):.3f} "
            f"(non-noise {adjusted_rand_score(truth[kept], result.labels[kept]):.3f}); {stages}",
            flush=True,
        )
    print(f"N={n}: ARI full vs sampled fit {adjusted_rand_score(full.labels, sampled.labels):.3f}", flush=True)


def naive(vectors: np.ndarray, seed: int) -> float:
    import hdbscan
    import umap

    started = time.perf_counter()
    xy = umap.UMAP(n_components=2, metric="cosine", random_state=seed).fit_transform(vectors)
    hdbscan.HDBSCAN(min_cluster_size=5).fit_predict(xy)
    return time.perf_counter() - started


def main() -> None:
    warnings.filterwarnings("ignore", message="n_jobs value")
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 100000])
    parser.add_argument("--naive-up-to", type=int, default=20000, help="skip the naive run above this size")
    parser.add_argument("--compare-at", type=int, default=0, help="compare a sampled UMAP fit with a full one at N")
    args = parser.parse_args()
    # Warm numba's JIT for both of UMAP's neighbour searches (exact below 4,096 points, NN-descent
    # above) and the PCA path, so no row pays compilation.
    project_and_cluster(synthetic(500), ClusteringConfig(seed=1))
    project_and_cluster(synthetic(6000), ClusteringConfig(seed=1))
    project_and_cluster(synthetic(6000), ClusteringConfig(seed=1, fit_sample=2000))  # and UMAP's transform
    naive(synthetic(6000), seed=1)
    print(f"machine: cores={os.cpu_count()}")
    for n in args.sizes:
        vectors = synthetic(n)
        started = time.perf_counter()
        result = project_and_cluster(vectors, ClusteringConfig(seed=1))
        product_s = time.perf_counter() - started
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
        found = f"{result.n_clusters} clusters, noise {result.noise_share:.1%}, UMAP fitted on {result.fitted_on:,}"
        line = f"N={n:>6}: product {product_s:7.1f} s ({stages}); {found}"
        if n <= args.naive_up_to:
            naive_s = naive(vectors, seed=1)
            line += f" | naive (no PCA) {naive_s:7.1f} s | ratio {naive_s / product_s:.2f}x"
        print(line, flush=True)
        del vectors, result
    if args.compare_at:
        compare_sampled_fit(args.compare_at)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
