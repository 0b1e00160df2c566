"""Paired statistics agree with scipy on random inputs, Holm with the step-down procedure it
defines, and degenerate inputs get the stated answers."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from workers.metrics.stats import (
    StatsConfig,
    bootstrap_mean_ci,
    compare_scores,
    comparison_table,
    holm_adjust,
    paired_comparison,
    paired_t_test,
    summary_table,
    wilcoxon_signed_rank,
)

judge_scores = st.integers(min_value=1, max_value=10).map(float)
real_scores = st.floats(min_value=-100, max_value=100, allow_nan=False).map(lambda value: round(value, 3))
pairs = st.lists(st.tuples(judge_scores, judge_scores), min_size=2, max_size=40) | st.lists(
    st.tuples(real_scores, real_scores), min_size=2, max_size=40
)


# Differences equal up to float rounding make scipy warn about precision; its answer is still the reference.
@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
@settings(max_examples=100, deadline=None)
@given(pairs=pairs)
def test_tests_match_scipy_and_degenerate_cases_get_the_stated_answer(pairs):
    first = np.array([a for a, _ in pairs])
    second = np.array([b for _, b in pairs])
    differences = second - first
    t_test, wilcoxon = paired_t_test(first, second), wilcoxon_signed_rank(first, second)
    if not differences.any():
        assert (t_test.statistic, t_test.p_value) == (0.0, 1.0) == (wilcoxon.statistic, wilcoxon.p_value)
        assert t_test.note == "every difference is zero"
        return
    reference = stats.ttest_rel(second, first)
    if math.isfinite(reference.statistic):
        assert t_test.statistic == pytest.approx(reference.statistic)
    else:
        assert t_test.statistic is None and "same amount" in t_test.note
    assert t_test.p_value == pytest.approx(reference.pvalue)
    reference = stats.wilcoxon(second, first)
    assert (wilcoxon.statistic, wilcoxon.p_value) == pytest.approx((reference.statistic, reference.pvalue))


def test_fewer_than_two_pairs_give_no_test():
    result = paired_t_test(np.array([1.0]), np.array([2.0]))
    assert (result.statistic, result.p_value, result.note) == (None, None, "needs at least 2 paired frames")


def _holm_rejections(p_values: list[float], alpha: float) -> set[int]:
    """Holm's step-down procedure as defined: reject in ascending order while p_(k) <= alpha/(m-k)."""
    rejected = set()
    order = sorted(range(len(p_values)), key=lambda index: p_values[index])
    for rank, index in enumerate(order):
        if p_values[index] > alpha / (len(p_values) - rank):
            break
        rejected.add(index)
    return rejected


@settings(max_examples=200, deadline=None)
@given(p_values=st.lists(st.integers(min_value=0, max_value=1000).map(lambda value: value / 1000), max_size=12))
def test_holm_adjusted_p_values_reject_exactly_what_the_step_down_procedure_rejects(p_values):
    adjusted = holm_adjust(p_values)
    assert all(raw <= adj <= 1.0 for raw, adj in zip(p_values, adjusted, strict=True))
    for alpha in (0.0105, 0.0505, 0.1005):  # off the 1/1000 grid: no ties with the thresholds
        assert {index for index, adj in enumerate(adjusted) if adj <= alpha} == _holm_rejections(p_values, alpha)


def test_holm_on_a_worked_example_and_with_untested_scores():
    # sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → raised to 0.06 (monotone)
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.02, None, 0.5, float("nan")]) == [0.04, None, 0.5, None]  # m = 2


def test_bootstrap_is_seeded_and_agrees_with_scipys_percentile_bootstrap():
    differences = np.random.default_rng(7).normal(0.8, 1.5, size=60)
    ci = bootstrap_mean_ci(differences, n_resamples=20_000, seed=3)
    assert ci == bootstrap_mean_ci(differences, n_resamples=20_000, seed=3)
    assert ci != bootstrap_mean_ci(differences, n_resamples=20_000, seed=4)
    reference = stats.bootstrap(
        (differences,), np.mean, n_resamples=20_000, method="percentile", rng=np.random.default_rng(0)
    ).confidence_interval
    assert ci[0] == pytest.approx(reference.low, abs=0.03) and ci[1] == pytest.approx(reference.high, abs=0.03)
    assert ci[0] < differences.mean() < ci[1]
    assert bootstrap_mean_ci(np.full(5, 2.0)) == (2.0, 2.0) and bootstrap_mean_ci(np.array([])) is None


def test_pipelines_are_paired_by_key_and_unmatched_or_missing_frames_are_dropped_and_counted():
    first = {1: 5.0, 2: 6.0, 3: 7.0, 4: None, 5: 4.0, 6: 3.0}
    second = {2: 8.0, 1: 6.0, 3: 7.5, 4: 9.0, 5: float("nan"), 7: 1.0, 6: 5.0}
    comparison = paired_comparison(first, second, StatsConfig(n_resamples=500))
    assert comparison.keys == (1, 2, 3, 6) and comparison.n == 4
    assert (comparison.only_first, comparison.only_second, comparison.missing_values) == (0, 1, 2)
    assert comparison.difference["mean"] == pytest.approx(np.mean([1.0, 2.0, 0.5, 2.0]))  # second − first
    assert comparison.first["mean"] == 5.25 and comparison.second["n"] == 4
    assert comparison.tests["t_test"].p_value == pytest.approx(stats.ttest_rel([6, 8, 7.5, 5], [5, 6, 7, 3]).pvalue)


def test_identical_pipelines_compare_gracefully():
    scores = {key: float(key % 10 + 1) for key in range(30)}
    comparison = paired_comparison(scores, dict(scores), StatsConfig(n_resamples=200))
    assert set(comparison.tests) == {"t_test", "wilcoxon"}
    assert all(result.p_value == 1.0 and result.statistic == 0.0 for result in comparison.tests.values())
    assert (comparison.ci_low, comparison.ci_high) == (0.0, 0.0) and comparison.difference["std"] == 0.0


def _simulated_scores(seed: int, n: int = 300) -> dict[str, dict[str, dict[int, float]]]:
    """Two pipelines over the same frames, the second better on every field but background."""
    rng = np.random.default_rng(seed)
    pipelines = {}
    for pipeline, gain in [("7B base", 0.0), ("7B SFT", 1.0)]:
        fields = {
            name: {
                key: float(np.clip(round(rng.normal(5 + (gain if name != "background" else 0), 1.5)), 1, 10))
                for key in range(n)
            }
            for name in ("salient_objects", "characters", "background", "scene")
        }
        fields["overall"] = {key: np.mean([fields[name][key] for name in fields]) for key in range(n)}
        pipelines[pipeline] = fields
    return pipelines


SCORE_NAMES = ["overall", "salient_objects", "characters", "background", "scene"]


def test_holm_runs_across_the_scores_of_one_comparison():
    scores = _simulated_scores(seed=1)
    comparisons = compare_scores(scores["7B base"], scores["7B SFT"], SCORE_NAMES, StatsConfig(n_resamples=500))
    assert list(comparisons) == SCORE_NAMES
    for test in ("t_test", "wilcoxon"):
        raw = [comparisons[name].tests[test].p_value for name in SCORE_NAMES]
        assert [comparisons[name].tests[test].p_holm for name in SCORE_NAMES] == holm_adjust(raw)
    assert comparisons["scene"].tests["t_test"].p_holm < 1e-6 and comparisons["scene"].ci_low > 0
    with pytest.raises(ValueError, match="missing from one of the pipelines"):
        compare_scores(scores["7B base"], {"overall": {}}, ["overall", "scene"])


def test_table_two_and_fig_six_error_bars():
    scores = _simulated_scores(seed=2, n=50)
    scores["7B SFT"]["scene"][0] = None  # an unparsable judgement: left out of that mean
    table = summary_table(scores, SCORE_NAMES)
    assert [row["pipeline"] for row in table] == ["7B base", "7B SFT"]
    values = [value for value in scores["7B SFT"]["scene"].values() if value is not None]
    row = table[1]
    assert row["scene_n"] == 49 and row["scene_mean"] == pytest.approx(np.mean(values))
    assert row["scene_std"] == pytest.approx(np.std(values, ddof=1))
    assert row["scene_sem"] == pytest.approx(stats.sem(values))
    assert json.loads(json.dumps(table)) == table


def test_table_three_has_a_row_per_comparison_with_raw_and_holm_p_values():
    scores = _simulated_scores(seed=3, n=80)
    table = comparison_table(scores, [("7B base", "7B SFT")], SCORE_NAMES, StatsConfig(n_resamples=300))
    row = table[0]
    assert (row["first"], row["second"], row["overall_n"]) == ("7B base", "7B SFT", 80)
    keys = range(80)
    reference = stats.ttest_rel(
        [scores["7B SFT"]["characters"][key] for key in keys], [scores["7B base"]["characters"][key] for key in keys]
    )
    assert row["characters_p_t_test"] == pytest.approx(reference.pvalue)
    assert row["characters_p_t_test_holm"] >= row["characters_p_t_test"]
    assert row["scene_ci_low"] <= row["scene_mean_difference"] <= row["scene_ci_high"]
    assert {"background_p_wilcoxon", "background_p_wilcoxon_holm"} <= set(row)
    json.dumps(table)  # plain values only


def test_unknown_test_names_are_refused():
    with pytest.raises(ValueError, match="Unknown paired tests"):
        StatsConfig(tests=("t_test", "anova"))
