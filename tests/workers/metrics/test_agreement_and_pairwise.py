"""Review statistics against a hand-computed example and sklearn / scipy; the pairwise judge's two
orders and how they combine; a tiny local pairwise judge decoding under its schema."""

import json
import math
from dataclasses import dataclass

import pytest
from scipy.stats import binomtest, spearmanr
from sklearn.metrics import cohen_kappa_score

from workers.metrics.agreement import agreement, cohen_kappa, spearman, win_rate
from workers.metrics.pairwise import (
    PAIRWISE_FIELDS,
    PairItem,
    combine_orders,
    judge_pairs,
    pairwise_prompt,
    parse_pairwise,
)
from workers.vlm.backends import GenerationOutput, ModelSpec

FIRST = [1, 1, 1, 0, -1, -1, 1, 0, 1, -1]
SECOND = [1, 1, 0, 0, -1, 1, 1, 0, 1, -1]


def test_kappa_of_a_hand_computed_example():
    # 8 of 10 the same; chance: (5·5 + 2·3 + 3·2) / 100 = 0.37; kappa = (0.8 − 0.37) / 0.63.
    assert cohen_kappa(FIRST, SECOND) == pytest.approx((0.8 - 0.37) / 0.63)
    assert cohen_kappa(FIRST, SECOND) == pytest.approx(cohen_kappa_score(FIRST, SECOND))
    result = agreement(FIRST, SECOND)
    assert (result.n, result.raw) == (10, 0.8)
    assert result.spearman == pytest.approx(spearmanr(FIRST, SECOND).statistic)


def test_kappa_is_undefined_when_both_raters_only_ever_say_one_thing():
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) is None
    assert agreement([], []).kappa is None and agreement([], []).n == 0
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 0])


def test_judge_score_differences_agree_by_direction_and_by_rank():
    people = [1, 1, 0, -1, 1, -1]
    differences = [2.5, 0.5, 0.0, -3.0, -0.5, -1.0]  # the judge's candidate − baseline scores
    result = agreement(people, differences)
    directions = [1, 1, 0, -1, -1, -1]
    assert result.raw == pytest.approx(5 / 6)
    assert result.kappa == pytest.approx(cohen_kappa_score(people, directions))
    assert result.spearman == pytest.approx(spearmanr(people, differences).statistic)
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # one side constant: no ranking to agree on


def test_win_rate_and_its_wilson_interval_by_hand():
    result = win_rate([1] * 7 + [-1] * 3 + [0] * 4)  # ties left out of the rate
    assert (result.wins, result.ties, result.losses, result.votes) == (7, 4, 3, 14)
    z = 1.959963984540054
    n, p = 10, 0.7
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert result.rate == 0.7
    assert (result.low, result.high) == (pytest.approx(centre - half), pytest.approx(centre + half))
    interval = binomtest(7, 10).proportion_ci(method="wilson")
    assert (result.low, result.high) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert win_rate([0, 0]).rate is None


def test_pairwise_answers_are_read_strictly():
    good = {"scene": "A", "background": "same", "characters": "B", "salient_objects": "same", "overall": "B"}
    assert parse_pairwise(json.dumps(good)).choices == good
    assert parse_pairwise("```json\n" + json.dumps(good) + "\n```").choices == good
    assert parse_pairwise(json.dumps({**good, "overall": "b"})).choices is None  # not one of A, B, same
    missing = parse_pairwise(json.dumps({k: v for k, v in good.items() if k != "scene"}))
    assert missing.choices is None and "scene" in missing.error
    assert parse_pairwise('{"scene": "A", "backgr').choices is None  # cut off


def test_both_orders_combine_from_the_candidates_side_and_position_bias_cancels():
    # forward: the candidate is B; backward: the candidate is A.
    same_way = combine_orders(dict.fromkeys(PAIRWISE_FIELDS, "B"), dict.fromkeys(PAIRWISE_FIELDS, "A"))
    assert set(same_way.values()) == {1}
    always_first = combine_orders(dict.fromkeys(PAIRWISE_FIELDS, "A"), dict.fromkeys(PAIRWISE_FIELDS, "A"))
    assert set(always_first.values()) == {0}  # it likes position A, not either caption
    once_and_tie = combine_orders(dict.fromkeys(PAIRWISE_FIELDS, "A"), dict.fromkeys(PAIRWISE_FIELDS, "same"))
    assert set(once_and_tie.values()) == {-1}


@dataclass
class ReadingJudge:
    """Prefers the caption that says "right", wherever it is shown: what a judge that reads does."""

    spec: ModelSpec
    prompts: list

    def generate(self, prompts):
        self.prompts.extend(prompts)
        outputs = []
        for prompt in prompts:
            text = " ".join(part.get("text", "") for part in prompt.messages[0]["content"])
            first, second = text.split("Caption A:")[1].split("Caption B:")
            choice = "A" if "right" in first else ("B" if "right" in second else "same")
            outputs.append(GenerationOutput(json.dumps(dict.fromkeys(PAIRWISE_FIELDS, choice)), 0.01))
        return outputs


def test_every_pair_is_asked_in_both_orders(frames):
    judge = ReadingJudge(ModelSpec(name="reader", model="-"), [])
    items = [
        PairItem(0, frames[0], {"scene": "the wrong one"}, {"scene": "the right one"}),
        PairItem(1, frames[1], {"scene": "the right one"}, {"scene": "the wrong one"}),
        PairItem(2, frames[2], {"scene": "one"}, {"scene": "another"}),
    ]
    rows = judge_pairs(judge, items)
    assert len(judge.prompts) == 6
    assert [row.status for row in rows] == ["ok"] * 3
    assert [row.preferences["overall"] for row in rows] == [1, -1, 0]
    assert rows[0].forward["overall"] == "B" and rows[0].backward["overall"] == "A"


def test_a_tiny_local_pairwise_judge_answers_inside_its_schema(tmp_path_factory, frames):
    from workers.vlm.tiny import build_tiny_qwen2_5_vl

    folder = build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("pairwise-judge") / "qwen", seed=5, init_std=0.3)
    spec = ModelSpec(
        name="tiny-pairwise",
        model=str(folder),
        max_new_tokens=96,
        reference_max_pixels=56 * 56,
        target_max_pixels=112 * 112,
        constrained=True,
    )
    items = [
        PairItem(i, frame, {"scene": f"Shot {i}."}, {"scene": f"Another shot {i}."})
        for i, frame in enumerate(frames[:2])
    ]
    rows = judge_pairs(spec, items)
    assert [row.status for row in rows] == ["ok", "ok"], [row.error for row in rows]
    for row in rows:
        assert set(row.preferences) == set(PAIRWISE_FIELDS) and set(row.preferences.values()) <= {-1, 0, 1}
    prompt = pairwise_prompt(frames[0], {"scene": "x"}, {"scene": "y"})
    assert prompt.json_schema["required"] == list(PAIRWISE_FIELDS)
