"""Validation scores of a detector: per-frame set metrics, averaged over frames (paper §3, Table 1).

For a frame with gold set G and predicted set P: precision |P∩G|/|P|, recall |P∩G|/|G|,
F1 2|P∩G|/(|P|+|G|), mistakes |P Δ G|. P = G = ∅ is a perfect answer (1, 1, 1, 0); any other
zero denominator gives 0. Each is averaged over frames (sklearn's `average="samples"`).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from workers.metrics.detection import set_scores


@dataclass(frozen=True)
class DetectionScores:
    precision: float
    recall: float
    sample_f1: float
    mistakes: float  # per frame
    frames: int


def frame_scores(predicted: Iterable[str], gold: Iterable[str]) -> tuple[float, float, float, int]:
    """(precision, recall, F1, mistakes) of one frame, with the evaluation's zero-denominator rule."""
    predicted, gold = set(predicted), set(gold)
    precision, recall, f1 = set_scores(len(predicted & gold), len(predicted), len(gold))
    return precision, recall, f1, len(predicted ^ gold)


def detection_scores(predicted: Sequence[Iterable[str]], gold: Sequence[Iterable[str]]) -> DetectionScores:
    if len(predicted) != len(gold) or not gold:
        raise ValueError(f"need one prediction per gold frame and at least one frame; got {len(predicted)}/{len(gold)}")
    rows = [frame_scores(p, g) for p, g in zip(predicted, gold, strict=True)]
    count = len(rows)
    return DetectionScores(
        precision=sum(row[0] for row in rows) / count,
        recall=sum(row[1] for row in rows) / count,
        sample_f1=sum(row[2] for row in rows) / count,
        mistakes=sum(row[3] for row in rows) / count,
        frames=count,
    )
