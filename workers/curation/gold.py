"""Pick the gold set: one frame per cluster (paper §4), noise excluded unless asked for."""

from dataclasses import dataclass

import numpy as np

from workers.curation.config import GoldSamplingConfig


@dataclass(frozen=True)
class GoldPick:
    asset_id: int
    cluster: int  # -1 for a pick from noise
    reason: str  # "centroid", "random", "noise", "top-up"


def _ranked_members(members: np.ndarray, vectors: np.ndarray, strategy: str, rng: np.random.Generator) -> np.ndarray:
    """Members of one cluster in pick order."""
    if strategy == "random":
        return rng.permutation(members)
    centroid = vectors[members].mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    similarity = vectors[members] @ centroid
    return members[np.argsort(-similarity, kind="stable")]


def sample_gold(
    asset_ids: list[int], vectors: np.ndarray, labels: np.ndarray, config: GoldSamplingConfig = GoldSamplingConfig()
) -> list[GoldPick]:
    ids = np.asarray(asset_ids)
    labels = np.asarray(labels)
    vectors = np.asarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(config.seed)
    clusters = sorted(set(labels.tolist()) - {-1})
    # Largest clusters first (ties by label): trimming to a target keeps the most populated scenes.
    clusters.sort(key=lambda label: (-int((labels == label).sum()), label))
    ranked = {
        label: _ranked_members(np.flatnonzero(labels == label), vectors, config.strategy, rng) for label in clusters
    }

    if config.target_size is not None and config.target_size < len(clusters):
        clusters = clusters[: config.target_size]
    picks = [GoldPick(int(ids[ranked[label][0]]), int(label), config.strategy) for label in clusters]

    if config.target_size is not None:
        depth = 1
        while len(picks) < config.target_size and any(depth < len(ranked[label]) for label in clusters):
            for label in clusters:
                if len(picks) >= config.target_size:
                    break
                if depth < len(ranked[label]):
                    picks.append(GoldPick(int(ids[ranked[label][depth]]), int(label), "top-up"))
            depth += 1

    noise = np.flatnonzero(labels == -1)
    if config.noise_picks and len(noise):
        chosen = rng.choice(noise, size=min(config.noise_picks, len(noise)), replace=False)
        picks.extend(GoldPick(int(ids[index]), -1, "noise") for index in sorted(chosen))
    return picks
