"""UMAP + HDBSCAN wall time on synthetic 512-d CLIP-like vectors (clusters on the unit sphere).

    .venv/bin/python bench/cluster_bench.py [--sizes 2000 20000 100000]

Naive baseline: UMAP straight on the 512-d vectors (no PCA), as a first script would do. Product:
`workers.curation.cluster.project_and_cluster` (PCA to 50 dims above 5,000 points). Both use the
same seed; the 2k row is measured "once warm" (numba's compilation is done by a first call).
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


def synthetic(n: int, dim: int = 512, clusters: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    labels = rng.integers(0, clusters, size=n)
    vectors = centers[labels] + 0.35 * rng.normal(size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


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
    args = parser.parse_args()
    # Warm numba's JIT for both of UMAP's neighbour searches (exact below 4,096 points, NN-descent
    # above) and the PCA path, so no row pays compilation.
    project_and_cluster(synthetic(500), ClusteringConfig(seed=1))
    project_and_cluster(synthetic(6000), ClusteringConfig(seed=1))
    naive(synthetic(6000), seed=1)
    print(f"machine: cores={os.cpu_count()}")
    for n in args.sizes:
        vectors = synthetic(n)
        started = time.perf_counter()
        result = project_and_cluster(vectors, ClusteringConfig(seed=1))
        product_s = time.perf_counter() - started
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
        found = f"{result.n_clusters} clusters, noise {result.noise_share:.1%}"
        line = f"N={n:>6}: product {product_s:7.1f} s ({stages}); {found}"
        if n <= args.naive_up_to:
            naive_s = naive(vectors, seed=1)
            line += f" | naive (no PCA) {naive_s:7.1f} s | ratio {naive_s / product_s:.2f}x"
        print(line, flush=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
