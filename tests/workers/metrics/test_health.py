"""Model-free health check: token length against a limit, structure adherence with its reasons."""

import json

import pytest

from workers.metrics.health import HealthConfig, caption_health, caption_health_report, count_tokens
from workers.vlm.parsing import CAPTION_KEYS

GOOD = {
    "scene": "Ellie waves at Victor.",
    "background": "A forest clearing at dusk.",
    "characters": [{"name": "Ellie", "description": "a girl in a red coat"}],
    "salient_objects": "a lantern, a log",
}


def health(raw: str, **config):
    return caption_health("k", raw, str.split, HealthConfig(**config))


def test_a_well_formed_caption_adheres():
    result = health(json.dumps(GOOD))
    assert result.adheres and result.parsed and result.schema_valid
    assert (result.repairs, result.missing_fields, result.empty_fields, result.error) == ((), (), (), "")
    assert result.tokens == len(json.dumps(GOOD).split()) and not result.too_long


def test_length_is_flagged_only_over_the_limit():
    words = " ".join(["word"] * 10)
    assert not health(words, token_limit=10).too_long
    assert health(words, token_limit=9).too_long
    assert HealthConfig().token_limit == 1024


def test_any_tokenizer_callable_counts_but_a_mapping_is_refused():
    from open_clip.tokenizer import SimpleTokenizer

    assert count_tokens("a red lantern", SimpleTokenizer().encode) == 3
    with pytest.raises(TypeError, match="returned a mapping"):
        count_tokens("a red lantern", lambda text: {"input_ids": [1, 2, 3], "attention_mask": [1, 1, 1]})


@pytest.mark.parametrize(
    ("raw", "parsed", "repairs", "missing", "empty"),
    [
        (f"```json\n{json.dumps(GOOD)}\n```", True, ("code_fence",), (), ()),
        (json.dumps({**GOOD, "salient_objects": "   "}), True, (), (), ("salient_objects",)),
        (json.dumps({key: value for key, value in GOOD.items() if key != "background"}), True, (), ("background",), ()),
        (json.dumps({**GOOD, "characters": []}), True, (), (), ("characters",)),
        # An answer that is no JSON object has none of the fields; no answer has all of them empty
        # (a page counting fields must not read either as "no problems").
        ("The frame shows Ellie in a forest.", False, (), CAPTION_KEYS, ()),
        ("", False, (), (), CAPTION_KEYS),
        ("  \n ", False, (), (), CAPTION_KEYS),
        ('["scene", "background"]', False, (), CAPTION_KEYS, ()),
    ],
)
def test_adherence_failures_come_with_their_reason(raw, parsed, repairs, missing, empty):
    result = health(raw)
    assert not result.adheres
    assert (result.parsed, result.repairs, result.missing_fields, result.empty_fields) == (
        parsed,
        repairs,
        missing,
        empty,
    )
    if not parsed:
        assert result.error and not result.schema_valid


def test_output_cut_off_at_max_tokens_is_read_but_flagged_as_repaired():
    result = health(json.dumps(GOOD)[:-20])
    assert result.parsed and "truncated" in result.repairs and not result.adheres


def test_wrong_types_fail_the_schema_with_the_field_named():
    result = health(json.dumps({**GOOD, "scene": 5}))
    assert result.parsed and not result.schema_valid and not result.adheres and result.error.startswith("scene:")


def test_required_fields_are_configurable_but_emptiness_is_still_reported():
    no_characters = json.dumps({**GOOD, "characters": []})
    result = health(no_characters, required_fields=("scene", "background", "salient_objects"))
    assert result.adheres and result.empty_fields == ("characters",)
    with pytest.raises(ValueError, match="Unknown caption fields"):
        HealthConfig(required_fields=("mood",))


def test_summary_counts_and_histogram_describe_the_whole_set():
    captions = {
        1: json.dumps(GOOD),
        2: json.dumps({**GOOD, "scene": ""}),
        3: "not json at all",
        4: f"```{json.dumps(GOOD)}```",
        5: " ".join(["long"] * 40),
    }
    report = caption_health_report(captions, str.split, HealthConfig(token_limit=30, histogram_bins=4))
    summary = report.summary()
    lengths = [len(raw.split()) for raw in captions.values()]
    assert summary["n"] == 5 and summary["adheres"] == 1 and summary["adherence_rate"] == 0.2
    assert (summary["parsed"], summary["repaired"], summary["schema_valid"]) == (3, 1, 2)
    assert summary["too_long"] == 1 and summary["tokens"]["max"] == 40 and summary["tokens"]["min"] == min(lengths)
    assert sum(summary["token_histogram"]["counts"]) == 5 and len(summary["token_histogram"]["edges"]) == 5
    assert summary["empty_fields"]["scene"] == 1 and summary["repairs"] == {"code_fence": 1}
    assert json.loads(json.dumps(report.to_dict()))["rows"][2]["parsed"] is False


def test_an_empty_set_has_no_numbers():
    summary = caption_health_report({}, str.split).summary()
    assert summary["n"] == 0 and summary["tokens"] is None and summary["adherence_rate"] is None
