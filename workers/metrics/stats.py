"""Paired comparisons of two pipelines over the same frames (paper §6.2, Tables 2–3, Fig. 6).

For each score, frames are aligned by key; a frame scored by only one pipeline, or with a missing
(None/NaN) score on either side, is dropped and counted. Differences are `second − first`, so a
positive mean difference means the second pipeline scored higher. On the paired differences:

- the paired t-test (scipy `ttest_rel`, the paper's test) and the Wilcoxon signed-rank test
  (scipy `wilcoxon`, zero differences dropped — its default), both two-sided;
- a percentile bootstrap CI of the mean difference (seeded; `n_resamples` configurable);
- Holm's step-down correction across the scores compared for one pair of pipelines, per test.

Degenerate inputs get a stated answer instead of scipy's NaN and warnings: fewer than 2 pairs →
no test (None); every difference zero → statistic 0, p = 1 ("no difference"); a t statistic that
is infinite (every frame differs by the same non-zero amount) is reported as None with scipy's
p-value and a note.
"""

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class StatsConfig:
    n_resamples: int = 10_000
    confidence: float = 0.95
    seed: int = 0
    tests: tuple[str, ...] = ("t_test", "wilcoxon")

    def __post_init__(self) -> None:
        if self.n_resamples < 1:
            raise ValueError("n_resamples must be at least 1.")
        if not 0 < self.confidence < 1:
            raise ValueError("confidence must be between 0 and 1.")
        unknown = sorted(set(self.tests) - set(PAIRED_TESTS))
        if unknown:
            raise ValueError(f"Unknown paired tests {unknown}; known: {sorted(PAIRED_TESTS)}.")


@dataclass(frozen=True)
class PairedTestResult:
    statistic: float | None
    p_value: float | None
    p_holm: float | None = None  # filled by compare_scores: Holm-adjusted across the scores
    note: str = ""


PairedTest = Callable[[np.ndarray, np.ndarray], PairedTestResult]
PAIRED_TESTS: dict[str, PairedTest] = {}


def register_paired_test(name: str):
    def register(test: PairedTest) -> PairedTest:
        PAIRED_TESTS[name] = test
        return test

    return register


def _degenerate(differences: np.ndarray) -> PairedTestResult | None:
    if len(differences) < 2:
        return PairedTestResult(None, None, note="needs at least 2 paired frames")
    if not differences.any():
        return PairedTestResult(0.0, 1.0, note="every difference is zero")
    return None


@register_paired_test("t_test")
def paired_t_test(first: np.ndarray, second: np.ndarray) -> PairedTestResult:
    degenerate = _degenerate(second - first)
    if degenerate is not None:
        return degenerate
    result = stats.ttest_rel(second, first)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    if not math.isfinite(statistic):
        return PairedTestResult(None, p_value, note="every frame differs by the same amount: t is infinite")
    return PairedTestResult(statistic, p_value)


@register_paired_test("wilcoxon")
def wilcoxon_signed_rank(first: np.ndarray, second: np.ndarray) -> PairedTestResult:
    degenerate = _degenerate(second - first)
    if degenerate is not None:
        return degenerate
    result = stats.wilcoxon(second, first)
    return PairedTestResult(float(result.statistic), float(result.pvalue))


def bootstrap_mean_ci(
    differences: np.ndarray, n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the mean: resample the differences with replacement."""
    differences = np.asarray(differences, dtype=np.float64)
    n = len(differences)
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    block = max(1, 2_000_000 // n)  # resamples per step: bounds the index matrix to ~16 MB
    for start in range(0, n_resamples, block):
        count = min(block, n_resamples - start)
        means[start : start + count] = differences[rng.integers(0, n, size=(count, n))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values, in the input order; None (no test) stays None and does
    not count towards the number of hypotheses."""
    present = [(p, index) for index, p in enumerate(p_values) if p is not None and not math.isnan(p)]
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))  # monotone: never below a smaller p's
        adjusted[index] = running
    return adjusted


def describe(values: Sequence[float]) -> dict:
    """n, mean, std (ddof=1), sem: a Fig. 6 error bar."""
    array = np.asarray(values, dtype=np.float64)
    n = len(array)
    std = float(array.std(ddof=1)) if n > 1 else None
    return {
        "n": n,
        "mean": float(array.mean()) if n else None,
        "std": std,
        "sem": std / math.sqrt(n) if std is not None else None,
    }


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class PairedComparison:
    n: int
    only_first: int  # frames scored by the first pipeline only
    only_second: int
    missing_values: int  # frames in both with a None/NaN score on either side
    first: dict  # describe() of the first pipeline's scores on the paired frames
    second: dict
    difference: dict  # describe() of second − first
    ci_low: float | None
    ci_high: float | None
    tests: dict[str, PairedTestResult] = field(default_factory=dict)
    keys: tuple[Hashable, ...] = ()  # the paired frames, for drill-down


def paired_comparison(
    first: Mapping[Hashable, float | None],
    second: Mapping[Hashable, float | None],
    config: StatsConfig = StatsConfig(),
) -> PairedComparison:
    """One score, two pipelines: see the module docstring. Frames are taken in `first`'s order."""
    shared = [key for key in first if key in second]
    keys = tuple(key for key in shared if _finite(first[key]) and _finite(second[key]))
    first_values = np.array([first[key] for key in keys], dtype=np.float64)
    second_values = np.array([second[key] for key in keys], dtype=np.float64)
    differences = second_values - first_values
    ci = bootstrap_mean_ci(differences, config.n_resamples, config.confidence, config.seed)
    return PairedComparison(
        n=len(keys),
        only_first=len(first) - len(shared),
        only_second=sum(key not in first for key in second),
        missing_values=len(shared) - len(keys),
        first=describe(first_values),
        second=describe(second_values),
        difference=describe(differences),
        ci_low=ci[0] if ci else None,
        ci_high=ci[1] if ci else None,
        tests={name: PAIRED_TESTS[name](first_values, second_values) for name in config.tests},
        keys=keys,
    )


ScoresByName = Mapping[str, Mapping[Hashable, float | None]]  # score name → frame key → score


def compare_scores(
    first: ScoresByName,
    second: ScoresByName,
    score_names: Sequence[str] | None = None,
    config: StatsConfig = StatsConfig(),
) -> dict[str, PairedComparison]:
    """Every score (default: those both pipelines have, in `first`'s order), Holm across them."""
    names = list(score_names) if score_names is not None else [name for name in first if name in second]
    missing = [name for name in names if name not in first or name not in second]
    if missing:
        raise ValueError(f"Scores missing from one of the pipelines: {missing}.")
    comparisons = {name: paired_comparison(first[name], second[name], config) for name in names}
    for test in config.tests:
        adjusted = holm_adjust([comparisons[name].tests[test].p_value for name in names])
        for name, p_holm in zip(names, adjusted, strict=True):
            tests = {**comparisons[name].tests, test: replace(comparisons[name].tests[test], p_holm=p_holm)}
            comparisons[name] = replace(comparisons[name], tests=tests)
    return comparisons


def summary_table(scores_by_pipeline: Mapping[str, ScoresByName], score_names: Sequence[str]) -> list[dict]:
    """Table 2 and Fig. 6's error bars: one row per pipeline; per score its mean, std, sem and n
    over the frames that pipeline has a score for (missing/NaN scores left out)."""
    rows = []
    for pipeline, scores in scores_by_pipeline.items():
        row: dict = {"pipeline": pipeline}
        for name in score_names:
            values = [value for value in scores.get(name, {}).values() if _finite(value)]
            for statistic, value in describe(values).items():
                row[f"{name}_{statistic}"] = value
        rows.append(row)
    return rows


def comparison_table(
    scores_by_pipeline: Mapping[str, ScoresByName],
    pairs: Sequence[tuple[str, str]],
    score_names: Sequence[str],
    config: StatsConfig = StatsConfig(),
) -> list[dict]:
    """Table 3: one row per (first, second) pipeline pair; per score the paired n, the mean
    difference (second − first) with its bootstrap CI, and each test's p-value, raw and Holm-adjusted."""
    rows = []
    for first, second in pairs:
        comparisons = compare_scores(scores_by_pipeline[first], scores_by_pipeline[second], score_names, config)
        row: dict = {"first": first, "second": second}
        for name, comparison in comparisons.items():
            row[f"{name}_n"] = comparison.n
            row[f"{name}_mean_difference"] = comparison.difference["mean"]
            row[f"{name}_ci_low"] = comparison.ci_low
            row[f"{name}_ci_high"] = comparison.ci_high
            # Same score on every paired frame: "no difference", not a test result with p = 1.
            row[f"{name}_no_difference"] = (
                comparison.n > 0
                and comparison.difference.get("std") == 0.0
                and (comparison.difference.get("mean") == 0.0)
            )
            for test, result in comparison.tests.items():
                row[f"{name}_p_{test}"] = result.p_value
                row[f"{name}_p_{test}_holm"] = result.p_holm
        rows.append(row)
    return rows
