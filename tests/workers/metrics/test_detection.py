"""Detection metrics agree with sklearn where the definitions coincide, and follow the stated
conventions where they do not (zero denominators, roster, duplicates, spelling)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, hamming_loss, precision_recall_fscore_support, precision_score, recall_score
from sklearn.preprocessing import MultiLabelBinarizer

from workers.metrics.detection import detection_scores, detection_table
from workers.metrics.taxonomy import METRICS, MetricClass

NAMES = ["Bruno", "Ellie", "Mira", "Sprite", "Victor"]
SPELLINGS = [str, str.upper, str.lower, lambda name: f"  {name.lower()} "]

name_sets = st.frozensets(st.sampled_from(NAMES), max_size=4)
frames_strategy = st.lists(st.tuples(name_sets, name_sets), min_size=1, max_size=25)


def _sample_mean(metric, labels: np.ndarray, predictions: np.ndarray, rows: np.ndarray, zero_division: int) -> float:
    """sklearn's sample-averaged metric on a subset of rows, as a sum (0 for an empty subset)."""
    if not rows.any():
        return 0.0
    return metric(labels[rows], predictions[rows], average="samples", zero_division=zero_division) * rows.sum()


@settings(max_examples=80, deadline=None)
@given(frames=frames_strategy, spellings=st.data())
def test_sample_and_micro_averages_match_sklearn(frames, spellings):
    gold = {index: sorted(actual) for index, (actual, _) in enumerate(frames)}
    # Predictions spelled any which way and with duplicates: they must score as the clean sets.
    predictions = {
        index: [spellings.draw(st.sampled_from(SPELLINGS))(name) for name in sorted(predicted) for _ in range(2)]
        for index, (_, predicted) in enumerate(frames)
    }
    report = detection_scores(predictions, gold, roster=NAMES)

    binarizer = MultiLabelBinarizer(classes=NAMES)
    labels = binarizer.fit_transform([actual for actual, _ in frames])
    predicted = binarizer.transform([predicted for _, predicted in frames])
    n = len(frames)
    gold_empty = labels.sum(axis=1) == 0
    predicted_empty = predicted.sum(axis=1) == 0

    # F1: sklearn's zero_division=1 on every frame.
    assert report.f1 == pytest.approx(f1_score(labels, predicted, average="samples", zero_division=1))
    # Precision: zero_division=1 where gold is empty too, 0 elsewhere; recall the mirror image.
    expected_precision = (
        _sample_mean(precision_score, labels, predicted, gold_empty, 1)
        + _sample_mean(precision_score, labels, predicted, ~gold_empty, 0)
    ) / n
    expected_recall = (
        _sample_mean(recall_score, labels, predicted, predicted_empty, 1)
        + _sample_mean(recall_score, labels, predicted, ~predicted_empty, 0)
    ) / n
    assert report.precision == pytest.approx(expected_precision)
    assert report.recall == pytest.approx(expected_recall)
    # #mistakes per frame = mismatched (frame, character) cells per frame.
    assert report.mistakes == pytest.approx(hamming_loss(labels, predicted) * len(NAMES))

    both_totals_zero = int(labels.sum() == 0 and predicted.sum() == 0)
    micro = [
        metric(labels, predicted, average="micro", zero_division=both_totals_zero)
        for metric in (precision_score, recall_score, f1_score)
    ]
    assert report.micro() == pytest.approx(tuple(micro))


@settings(max_examples=80, deadline=None)
@given(frames=frames_strategy)
def test_per_character_rows_match_sklearn_per_label_scores(frames):
    gold = {index: actual for index, (actual, _) in enumerate(frames)}
    predictions = {index: predicted for index, (_, predicted) in enumerate(frames)}
    report = detection_scores(predictions, gold, roster=NAMES)

    binarizer = MultiLabelBinarizer(classes=NAMES)
    labels = binarizer.fit_transform([actual for actual, _ in frames])
    predicted = binarizer.transform([predicted for _, predicted in frames])
    strict = precision_recall_fscore_support(labels, predicted, average=None, zero_division=0)
    lenient = precision_recall_fscore_support(labels, predicted, average=None, zero_division=1)
    never_seen = (labels.sum(axis=0) == 0) & (predicted.sum(axis=0) == 0)

    rows = {row.name: row for row in report.characters}
    assert sorted(rows) == NAMES  # every roster character has a row, seen or not
    for column, name in enumerate(NAMES):
        reference = lenient if never_seen[column] else strict
        row = rows[name]
        assert (row.precision, row.recall, row.f1) == pytest.approx(tuple(ref[column] for ref in reference[:3]))
        assert row.support == strict[3][column]
        assert row.false_positive_keys == tuple(
            i for i in range(len(frames)) if predicted[i, column] > labels[i, column]
        )
    seen = ~never_seen
    if seen.any():
        macro = [
            metric(labels, predicted, labels=np.flatnonzero(seen), average="macro", zero_division=0)
            for metric in (precision_score, recall_score, f1_score)
        ]
        assert report.character_macro() == pytest.approx(tuple(macro))
    else:
        assert report.character_macro() is None


@pytest.mark.parametrize(
    ("predicted", "actual", "expected"),
    [
        ([], [], (1.0, 1.0, 1.0, 0)),  # a frame without characters, correctly left empty
        (["Ellie"], [], (0.0, 0.0, 0.0, 1)),
        ([], ["Ellie", "Victor"], (0.0, 0.0, 0.0, 2)),
        (["Ellie", "Mira"], ["Ellie", "Victor"], (0.5, 0.5, 0.5, 2)),
        (["Ellie", "Victor"], ["Ellie", "Victor"], (1.0, 1.0, 1.0, 0)),
    ],
)
def test_edge_cases_follow_the_stated_conventions(predicted, actual, expected):
    report = detection_scores({"f": predicted}, {"f": actual}, roster=NAMES)
    row = report.rows[0]
    assert (row.precision, row.recall, row.f1, row.mistakes) == expected
    assert (report.precision, report.recall, report.f1, report.mistakes) == expected


def test_micro_averages_of_an_all_empty_set_are_perfect_and_of_no_predictions_zero():
    assert detection_scores({1: [], 2: []}, {1: [], 2: []}).micro() == (1.0, 1.0, 1.0)
    assert detection_scores({1: [], 2: []}, {1: ["Ellie"], 2: []}).micro() == (0.0, 0.0, 0.0)


def test_names_off_the_roster_are_false_positives_and_flagged():
    report = detection_scores({"f": ["Ellie", "Bob the Builder"]}, {"f": ["Ellie"]}, roster=NAMES)
    row = report.rows[0]
    assert row.false_positives == ("Bob the Builder",) and row.unknown_predicted == ("Bob the Builder",)
    assert (row.precision, row.recall, row.mistakes) == (0.5, 1.0, 1)
    bob = next(character for character in report.characters if character.name == "Bob the Builder")
    assert not bob.on_roster and bob.false_positive_keys == ("f",)


def test_an_off_roster_name_never_matches_even_when_gold_has_it():
    # Gold from before a roster change: kept as a label (it can only be missed) and reported.
    report = detection_scores({"f": ["Pip"]}, {"f": ["Pip"]}, roster=NAMES)
    row = report.rows[0]
    assert row.true_positives == () and row.false_positives == ("Pip",) and row.false_negatives == ("Pip",)
    assert report.unknown_gold_names == ["Pip"]


def test_aliases_case_whitespace_and_duplicates_map_onto_one_canonical_name():
    roster = {"Sprite": ["sprites", "the sprite"], "Ellie": []}
    report = detection_scores(
        {"f": ["The  SPRITE", "sprites", "Sprite", " ellie", "", "  "]}, {"f": ["Sprite", "Ellie"]}, roster
    )
    assert report.rows[0].predicted == ("Ellie", "Sprite") and report.rows[0].f1 == 1.0


def test_without_a_roster_names_match_case_insensitively_and_keep_the_first_spelling():
    report = detection_scores({"f": ["ellie", "MIRA"]}, {"f": ["Ellie"]})
    assert report.rows[0].predicted == ("Ellie", "MIRA") and report.rows[0].unknown_predicted == ()
    assert {character.name: character.on_roster for character in report.characters} == {"Ellie": True, "MIRA": True}


def test_frames_are_aligned_by_key_and_unmatched_ones_are_counted_not_scored():
    report = detection_scores({1: ["Ellie"], 3: ["Mira"], 9: ["Victor"]}, {1: ["Ellie"], 2: ["Mira"], 3: []})
    assert [row.key for row in report.rows] == [1, 3]
    assert report.missing_predictions == [2] and report.unmatched_predictions == [9]
    summary = report.summary()
    assert summary["n"] == 2 and summary["f1"] == 0.5
    assert (summary["missing_predictions"], summary["unmatched_predictions"]) == (1, 1)


def test_no_evaluated_frame_gives_no_numbers_rather_than_zeros():
    report = detection_scores({}, {1: ["Ellie"]})
    assert report.n == 0 and report.f1 is None and report.micro() is None and report.character_macro() is None


def test_bad_inputs_are_named():
    with pytest.raises(TypeError, match="got the string 'Ellie'"):
        detection_scores({"f": "Ellie"}, {"f": ["Ellie"]})
    with pytest.raises(TypeError, match="must be strings"):
        detection_scores({"f": [None]}, {"f": ["Ellie"]})


def test_table_one_has_a_row_per_detector_with_the_papers_metrics():
    gold = {1: ["Ellie"], 2: ["Ellie", "Victor"], 3: []}
    reports = {
        "qwen2.5-vl-7b": detection_scores({1: ["Ellie"], 2: ["Mira"], 3: ["Victor"]}, gold, NAMES),
        "qwen2.5-vl-7b+sft": detection_scores({1: ["Ellie"], 2: ["Ellie", "Victor"], 3: []}, gold, NAMES),
    }
    table = detection_table(reports)
    assert [row["detector"] for row in table] == ["qwen2.5-vl-7b", "qwen2.5-vl-7b+sft"]
    assert table[0] == {
        "detector": "qwen2.5-vl-7b",
        "n": 3,
        "precision": 1 / 3,
        "recall": 1 / 3,
        "f1": 1 / 3,
        "mistakes": 4 / 3,
    }
    assert table[1]["f1"] == 1.0 and table[1]["mistakes"] == 0.0
    assert all(
        METRICS[name].metric_class is MetricClass.INSTANCE_GROUNDED
        for name in ("precision", "recall", "f1", "mistakes")
    )


def test_report_serialises_to_plain_json():
    import json

    report = detection_scores({1: ["Ellie"], 2: ["Bob"]}, {1: ["Ellie"], 2: []}, roster=NAMES)
    decoded = json.loads(json.dumps(report.to_dict()))
    assert decoded["summary"]["precision"] == 0.5 and decoded["rows"][1]["unknown_predicted"] == ["Bob"]
