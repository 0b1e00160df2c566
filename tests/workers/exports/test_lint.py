"""Lint before export: over-long captions, empty fields and identity phrases, counted exactly."""

import json

import pytest

from workers.exports import CaptionLinter, DenseTemplate, ExportRecord, LintConfig, lint_records

ANA_SCENES = [
    ("Ana ties her red scarf.", "a windy pier", "a rope"),
    ("Ana, in a red scarf, reads a map.", "a train station", "a map"),
    ("Ana waves; the red scarf flutters.", "a hilltop", "a kite"),
    ("Ana laughs in her red scarf.", "a market", "apples"),
    ("Ana sits, red scarf loose.", "a library", "books"),
    ("Ana runs with a red scarf.", "a beach", "shells"),
]
BO_SCENES = [
    ("Bo fixes a bike.", "a garage", "a wrench"),
    ("Bo sings.", "a stage", "a microphone"),
    ("Bo cooks pasta.", "a kitchen", "a pot"),
    ("Bo sleeps.", "a hammock", "a hat"),
]


def record(key, scene, background="a room", salient_objects="a chair", characters=()):
    return ExportRecord(
        key=key,
        file_stem=key,
        image=lambda: b"",
        scene=scene,
        background=background,
        characters=list(characters),
        salient_objects=salient_objects,
    )


def scarf_set(bo_scenes=BO_SCENES):
    ana = [record(f"ana{i}", *scene, characters=["Ana"]) for i, scene in enumerate(ANA_SCENES)]
    bo = [record(f"bo{i}", *scene, characters=["Bo"]) for i, scene in enumerate(bo_scenes)]
    return ana + bo


def test_a_phrase_that_always_comes_with_a_character_is_an_identity_finding():
    report = lint_records(scarf_set())
    assert len(report.identity_phrases) == 1
    finding = report.identity_phrases[0]
    assert (finding.character, finding.phrase) == ("Ana", "red scarf")
    assert (finding.count, finding.frames_with, finding.share_with) == (6, 6, 1.0)
    assert (finding.count_without, finding.frames_without, finding.share_without) == (0, 4, 0.0)
    assert [example.key for example in finding.examples] == [f"ana{i}" for i in range(5)]  # max_examples
    assert all("red scarf" in example.snippet for example in finding.examples)


def test_a_phrase_still_counts_when_it_is_rare_without_the_character():
    bo = [*BO_SCENES[:3], ("Bo finds a red scarf.", "a hammock", "a hat")]
    [finding] = lint_records(scarf_set(bo)).identity_phrases
    assert (finding.phrase, finding.count_without, finding.share_without) == ("red scarf", 1, 0.25)


def test_a_phrase_common_to_everyone_is_no_identity_finding():
    bo = [(f"Bo wears a red scarf {n}.", background, objects) for n, (_, background, objects) in enumerate(BO_SCENES)]
    assert lint_records(scarf_set(bo)).identity_phrases == ()


def test_a_set_without_a_tied_phrase_has_no_finding():
    others = ["hat", "coat", "map", "cup", "book", "kite"]
    ana = [
        record(f"ana{i}", scene.replace("red scarf", other), background, objects, characters=["Ana"])
        for i, ((scene, background, objects), other) in enumerate(zip(ANA_SCENES, others, strict=True))
    ]
    assert lint_records(ana + scarf_set()[6:]).identity_phrases == ()


def test_too_few_frames_of_a_character_are_no_evidence():
    records = scarf_set()[:4] + scarf_set()[6:]
    assert lint_records(records).identity_phrases == ()
    assert lint_records(records, LintConfig(identity_min_frames=4)).identity_phrases[0].phrase == "red scarf"


def test_names_and_stop_words_are_not_phrases():
    # "Ana in a room. Ana and the cat b. a chair": "ana in a room" names her, "and the" is only stop
    # words, "a chair" is in every caption; "a room" is the same occurrences as "in a room".
    records = [record(f"a{i}", f"Ana and the cat {word}.", characters=["Ana"]) for i, word in enumerate("bcdefg")]
    records += [record(f"n{i}", "Rain.", background=f"a place {i}") for i in range(5)]
    phrases = {finding.phrase for finding in lint_records(records).identity_phrases}
    assert phrases == {"in a room", "and the cat"}


def test_over_long_captions_and_empty_fields_are_counted_exactly():
    records = [
        record("r1", "one two three", characters=["Ana"]),
        record("r2", "one two three four five", background="", characters=["Ana"]),
        record("r3", "one two three four five six", background="   ", salient_objects=""),
        record("r4", " ".join(["word"] * 10), salient_objects=""),
        record("r5", "", characters=["Bo"]),
    ]
    linter = CaptionLinter(LintConfig(token_limit=5, max_examples=1), DenseTemplate("{scene}"))
    for each in records:
        linter.add(each)
    report = linter.report()
    assert report.frames == 5 and report.token_limit == 5
    assert report.too_long.count == 2
    assert [example.key for example in report.too_long.examples] == ["r3"]  # max_examples=1
    counts = {name: finding.count for name, finding in report.empty_fields.items()}
    assert counts == {"scene": 1, "background": 2, "characters": 2, "salient_objects": 2}
    assert report.empty_fields["background"].examples[0].key == "r2"
    assert report.problems == 2 + 7


def test_a_tokenizer_and_a_ready_caption_can_be_passed():
    linter = CaptionLinter(LintConfig(token_limit=3, tokenize=list))  # characters as tokens
    linter.add(record("k", "x"), caption="abcd")
    assert linter.report().too_long.count == 1


def test_pruned_counts_say_they_are_approximate():
    report = lint_records(scarf_set(), LintConfig(max_ngrams=8))
    assert report.approximate and report.max_count_error >= 1
    exact = lint_records(scarf_set())
    assert not exact.approximate and exact.max_count_error == 0


def test_the_report_is_plain_json():
    data = json.loads(json.dumps(lint_records(scarf_set()).to_dict()))
    assert data["identity_phrases"][0]["phrase"] == "red scarf"
    assert data["problems"] == 1 + data["empty_fields"]["characters"]["count"]


@pytest.mark.parametrize(
    "bad",
    [
        {"token_limit": 0},
        {"fields": ("mood",)},
        {"identity_min_share": 0},
        {"identity_max_ratio": 2},
        {"ngram_sizes": ()},
        {"identity_min_frames": 0},
    ],
)
def test_lint_config_is_checked(bad):
    with pytest.raises(ValueError):
        LintConfig(**bad)


def test_a_roster_name_no_caption_lists_is_still_a_name_not_an_identity_phrase():
    # Every caption of Ana's says she is "with Tock", yet no caption lists Tock among its characters:
    # without the roster the phrase would read as Ana's look.
    ana = [record(f"ana{i}", f"Ana with Tock, scene {i}.", characters=["Ana"]) for i in range(6)]
    bo = [record(f"bo{i}", f"Bo alone, scene {i}.", characters=["Bo"]) for i in range(4)]
    assert "with tock" in {f.phrase for f in lint_records(ana + bo).identity_phrases}
    with_roster = lint_records(ana + bo, LintConfig(character_names=("Ana", "Bo", "Tock")))
    assert not any("tock" in finding.phrase for finding in with_roster.identity_phrases)
