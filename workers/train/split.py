"""The gold set's train/test split (paper §5: 80/20, random)."""

import random
from collections.abc import Sequence
from typing import TypeVar

AssetId = TypeVar("AssetId", int, str)


def split_gold(asset_ids: Sequence[AssetId], seed: int, train_fraction: float = 0.8) -> tuple[list, list]:
    """(train, test), each sorted. Depends only on the set of ids and the seed, not on their order,
    so the app can recompute it from a queryset; both parts are non-empty from two ids up."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be between 0 and 1; got {train_fraction}")
    ids = sorted(set(asset_ids))
    random.Random(seed).shuffle(ids)
    train_size = round(len(ids) * train_fraction)
    if len(ids) >= 2:
        train_size = min(max(train_size, 1), len(ids) - 1)
    return sorted(ids[:train_size]), sorted(ids[train_size:])
