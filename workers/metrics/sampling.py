"""The model-based evaluation set (paper §6.2): frames sampled at random from those NOT in the
gold set, so no frame the detector was trained or tested on is judged again (no leakage)."""

import random
from collections.abc import Hashable, Iterable
from dataclasses import dataclass


class LeakageError(ValueError):
    def __init__(self, overlap: list[Hashable]):
        self.overlap = overlap
        shown = ", ".join(repr(key) for key in overlap[:20])
        more = f" and {len(overlap) - 20} more" if len(overlap) > 20 else ""
        super().__init__(f"{len(overlap)} evaluation frame(s) are in the gold set: {shown}{more}.")


@dataclass(frozen=True)
class EvalSample:
    keys: list[Hashable]  # sorted
    requested: int
    available: int  # candidates outside the gold set; fewer than requested → all of them
    excluded_gold: int  # candidates left out because they are gold frames
    seed: int


def _ordered(keys: Iterable[Hashable]) -> list[Hashable]:
    # A fixed order before sampling: the same seed must give the same frames whatever order the
    # database returned them in. repr() orders keys of mixed types too.
    return sorted(set(keys), key=lambda key: (type(key).__name__, key if isinstance(key, int | str) else repr(key)))


def sample_eval_set(
    candidate_keys: Iterable[Hashable], gold_keys: Iterable[Hashable], n: int = 300, seed: int = 0
) -> EvalSample:
    if n < 1:
        raise ValueError("n must be at least 1.")
    candidates = _ordered(candidate_keys)
    gold = set(gold_keys)
    pool = [key for key in candidates if key not in gold]
    picked = random.Random(seed).sample(pool, min(n, len(pool)))
    return EvalSample(
        keys=_ordered(picked),
        requested=n,
        available=len(pool),
        excluded_gold=len(candidates) - len(pool),
        seed=seed,
    )


def check_no_leakage(eval_keys: Iterable[Hashable], gold_keys: Iterable[Hashable]) -> None:
    """Raise LeakageError listing every evaluation frame that is also a gold frame."""
    gold = set(gold_keys)
    overlap = _ordered(key for key in eval_keys if key in gold)
    if overlap:
        raise LeakageError(overlap)
