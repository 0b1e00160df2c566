"""How reviewers' A/B preferences add up, and how far two raters — two reviewers, or a judge and
the reviewers — agree.

A preference is seen from the candidate's side: +1 the candidate's caption is better, 0 the same,
-1 worse. Win rates leave ties out (the share of decided votes the candidate wins), with a Wilson
interval from scipy; agreement is Cohen's kappa from scikit-learn on the direction and Spearman's
rho from scipy where the other rater gives magnitudes (a judge's score differences).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

PREFERENCES = (-1, 0, 1)


@dataclass(frozen=True)
class WinRate:
    wins: int
    ties: int
    losses: int
    rate: float | None  # wins / (wins + losses); None before any decided vote
    low: float | None  # Wilson interval of the rate
    high: float | None

    @property
    def votes(self) -> int:
        return self.wins + self.ties + self.losses


def win_rate(preferences: Sequence[int], confidence: float = 0.95) -> WinRate:
    from scipy.stats import binomtest

    wins = sum(1 for p in preferences if p > 0)
    losses = sum(1 for p in preferences if p < 0)
    ties = len(preferences) - wins - losses
    decided = wins + losses
    if decided == 0:
        return WinRate(wins, ties, losses, None, None, None)
    interval = binomtest(wins, decided).proportion_ci(confidence_level=confidence, method="wilson")
    return WinRate(wins, ties, losses, wins / decided, float(interval.low), float(interval.high))


@dataclass(frozen=True)
class Agreement:
    n: int  # items both raters rated
    raw: float | None  # share of items with the same direction
    kappa: float | None  # Cohen's kappa on the direction; None when undefined (one class only)
    spearman: float | None = None  # on magnitudes, where the second rater gives them


def direction(value: float) -> int:
    return (value > 0) - (value < 0)


def cohen_kappa(first: Sequence[int], second: Sequence[int]) -> float | None:
    """Kappa over (-1, 0, 1); None where it is undefined (both raters always say the same one
    thing: chance agreement is 1) or there is nothing to compare."""
    from sklearn.metrics import cohen_kappa_score

    if len(first) != len(second):
        raise ValueError("both raters must rate the same items")
    if not first or len(set(first) | set(second)) < 2:
        return None
    value = float(cohen_kappa_score(first, second, labels=list(PREFERENCES)))
    return None if math.isnan(value) else value


def spearman(first: Sequence[float], second: Sequence[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(first) < 3 or len(set(first)) < 2 or len(set(second)) < 2:
        return None
    value = float(spearmanr(first, second).statistic)
    return None if math.isnan(value) else value


def agreement(first: Sequence[float], second: Sequence[float]) -> Agreement:
    """Two raters over the same items. `first` are preferences (-1/0/1); `second` may be
    magnitudes (e.g. judge score differences): kappa uses their direction, Spearman their values."""
    if len(first) != len(second):
        raise ValueError("both raters must rate the same items")
    if not first:
        return Agreement(0, None, None, None)
    a = [direction(value) for value in first]
    b = [direction(value) for value in second]
    same = sum(1 for x, y in zip(a, b, strict=True) if x == y)
    return Agreement(len(a), same / len(a), cohen_kappa(a, b), spearman(list(first), list(second)))
