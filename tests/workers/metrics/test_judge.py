"""The VLM judge: versioned rubric prompt, strict reading of the answer (bad answers are counted
as unparsable and excluded, never guessed), any backend of the registry."""

import json

import pytest

from tests.workers.vlm.test_openai_backend import ScriptedServer
from workers.metrics.judge import (
    JUDGE_FIELDS,
    JUDGE_RUBRIC_VERSION,
    JudgeItem,
    judge_agreement,
    judge_captions,
    judge_prompt,
    parse_judgement,
)
from workers.vlm.backends import ModelSpec

CAPTION = {
    "scene": "Ellie waves.",
    "background": "A forest.",
    "characters": [{"name": "Ellie", "description": "red coat"}],
    "salient_objects": "a lantern",
}


def answer(**scores) -> str:
    return json.dumps({"salient_objects": 7, "characters": 5, "background": 9, "scene": 6, **scores})


@pytest.mark.parametrize(
    ("raw", "expected", "flags"),
    [
        (answer(), {"salient_objects": 7, "characters": 5, "background": 9, "scene": 6}, ()),
        (f"Here you go:\n```json\n{answer(scene=10)}\n```", {"scene": 10}, ("code_fence",)),
        (answer(scene=1.0, reason="fine"), {"scene": 1}, ()),  # 1.0 is a whole number; extra keys ignored
    ],
)
def test_valid_answers_are_read(raw, expected, flags):
    parsed = parse_judgement(raw)
    assert parsed.ok and parsed.flags == flags and parsed.error == ""
    assert parsed.scores.items() >= expected.items() and set(parsed.scores) == set(JUDGE_FIELDS)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("The caption is quite good, I would say 8/10.", "No JSON object"),
        ("", "returned nothing"),
        (answer(scene=11), "scene: 11 is not a whole number from 1 to 10"),
        (answer(characters=0), "characters: 0"),
        (answer(background=7.5), "background: 7.5"),
        (answer(scene="7"), "scene: '7'"),
        (answer(scene=True), "scene: True"),
        (answer(scene=None), "scene: None"),
        (json.dumps({"salient_objects": 7, "characters": 5, "background": 9}), "scene: missing"),
        (answer()[:-3], "cut off"),  # '... "scene": 6}' lost its end: never guessed
        ('{"salient_objects": 7, "characters": 5, "background": 9, "scene": 1', "cut off"),  # maybe a 10
        ("[7, 5, 9, 6]", "Expected a JSON object"),
    ],
)
def test_bad_answers_are_unparsable_with_the_reason(raw, error):
    parsed = parse_judgement(raw)
    assert not parsed.ok and parsed.scores is None and error in parsed.error


def test_prompt_shows_roster_frame_caption_and_the_versioned_rubric(frames, cards):
    prompt = judge_prompt(JudgeItem("f", frames[0], CAPTION), cards)
    assert prompt.version == JUDGE_RUBRIC_VERSION
    assert prompt.images == [cards[1].reference_paths[0], cards[0].reference_paths[0], frames[0]]  # Ellie, Victor
    assert prompt.target_index == 2
    text = prompt.text
    assert (
        text.index("Ellie:")
        < text.index("The frame:")
        < text.index(json.dumps(CAPTION))
        < text.index("salient_objects:")
    )
    assert "with the names given above" in text and "from 1 to 10" in text
    bare = judge_prompt(JudgeItem("f", frames[0], "a raw caption"))
    assert bare.images == [frames[0]] and "a raw caption" in bare.text and "names given above" not in bare.text
    assert prompt.json_schema["required"] == list(JUDGE_FIELDS)


@pytest.fixture
def server():
    scripted = ScriptedServer()
    yield scripted
    scripted.close()


def test_an_openai_compatible_judge_counts_bad_answers_and_excludes_them(server, frames, cards):
    server.script = [
        ("ok", answer()),
        ("ok", f"Sure! ```json\n{answer(scene=10, characters=9)}\n```"),
        ("ok", "I cannot grade this image."),
        ("ok", answer(scene=11)),
        ("ok", json.dumps({"scene": 6})),
        ("ok", answer()[:-4]),
        ("status", 400),
        ("garbage", "<html>bad gateway</html>"),
    ]
    spec = ModelSpec(
        name="served-judge",
        backend="openai",
        model="judge-model",
        base_url=server.url,
        allowed_base_urls=(server.url,),
        max_retries=0,
        concurrency=1,
    )
    items = [JudgeItem(key, frames[key % len(frames)], CAPTION) for key in range(8)]
    progress = []
    report = judge_captions(
        spec, items, cards, chunk_size=3, on_progress=lambda done, total: progress.append((done, total))
    )

    assert [row.status for row in report.rows] == ["ok", "ok"] + ["unparsable"] * 4 + ["error"] * 2
    assert report.rows[0].overall == (7 + 5 + 9 + 6) / 4 and report.rows[1].flags == ("code_fence",)
    assert all(row.raw for row in report.rows[2:6])  # the raw answer is kept for review
    assert progress == [(3, 8), (6, 8), (8, 8)]
    summary = report.summary()
    assert (summary["n"], summary["ok"], summary["unparsable"], summary["error"]) == (8, 2, 4, 2)
    assert summary["unparsable_rate"] == 0.5 and summary["rubric_version"] == JUDGE_RUBRIC_VERSION
    assert summary["judge"] == "served-judge"
    assert summary["means"]["scene"] == 8.0 and summary["means"]["characters"] == 7.0  # the two valid answers only
    assert report.scores()["overall"] == {0: 6.75, 1: (7 + 9 + 9 + 10) / 4}
    request = server.requests[0]["body"]
    images = [part for part in request["messages"][0]["content"] if part["type"] == "image_url"]
    assert len(images) == 3 and request["max_tokens"] == spec.max_new_tokens
    assert json.loads(json.dumps(report.to_dict()))["rows"][3]["status"] == "unparsable"


def test_a_tiny_local_judge_runs_and_its_gibberish_is_counted_unparsable(tmp_path_factory, frames):
    from workers.vlm.tiny import build_tiny_qwen2_5_vl

    folder = build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("judge-model") / "qwen")
    spec = ModelSpec(
        name="tiny-judge",
        model=str(folder),
        max_new_tokens=12,
        reference_max_pixels=56 * 56,
        target_max_pixels=112 * 112,
    )
    items = [JudgeItem(index, frame, {**CAPTION, "scene": f"Shot {index}."}) for index, frame in enumerate(frames[:2])]
    report = judge_captions(spec, items)
    assert [row.status for row in report.rows] == ["unparsable", "unparsable"]
    assert all(row.scores is None and row.overall is None and row.error for row in report.rows)
    summary = report.summary()
    assert summary["ok"] == 0 and summary["unparsable_rate"] == 1.0 and summary["means"]["overall"] is None


def test_judge_agreement_with_a_reference_matches_scipy_and_counts_pairs():
    from scipy.stats import spearmanr

    reference = {"base": {1: 0.0, 2: 1.0, 3: 0.5}, "tuned": {1: 1.0, 2: 1.0, 3: 0.0}}
    judge = {"base": {1: 2.0, 2: 9.0, 3: 5.0}, "tuned": {1: 8.0, 2: 4.0, 3: 5.0}}
    agreement = judge_agreement(judge, reference)
    pairs = [(judge[p][f], reference[p][f]) for p in judge for f in judge[p]]
    assert agreement.n == 6
    assert agreement.spearman == pytest.approx(spearmanr(*zip(*pairs, strict=True)).statistic)
    # Frame 1: the truth prefers tuned and so does the judge; frame 2: a tie in truth, not counted;
    # frame 3: the truth prefers base, the judge scores both 5.
    assert (agreement.pairs, agreement.pairs_agree, agreement.pairs_tied) == (2, 1, 1)
    assert agreement.pairwise_agreement == 0.5


def test_a_constant_judge_has_no_rank_correlation():
    reference = {"base": {1: 0.0, 2: 1.0}, "tuned": {1: 1.0, 2: 1.0}}
    judge = {"base": {1: 8.0, 2: 8.0}, "tuned": {1: 8.0, 2: 8.0}}
    agreement = judge_agreement(judge, reference)
    assert agreement.n == 4 and agreement.spearman is None
    assert (agreement.pairs, agreement.pairs_agree, agreement.pairs_tied) == (1, 0, 1)
