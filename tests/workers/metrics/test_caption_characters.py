"""The names in a caption's `characters` field score like a detector's answer: the same numbers as
sklearn on the same sets, an unparseable caption names nobody, a name off the roster is a mistake."""

import pytest
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from workers.metrics.caption_characters import caption_character_names, caption_character_scores, per_frame_scores

ROSTER = {"Ellie": ["Elly"], "Sprite": [], "Victor": []}


def _caption(*names) -> dict:
    return {
        "scene": "A scene.",
        "background": "A room.",
        "characters": [{"name": name, "description": "stands there"} for name in names],
        "salient_objects": "",
    }


def test_names_come_from_the_characters_field_and_an_unparseable_caption_names_nobody():
    assert caption_character_names(_caption("Ellie", "Victor")) == ["Ellie", "Victor"]
    assert caption_character_names({"characters": ["Sprite", {"description": "no name"}, {"name": 3}]}) == ["Sprite"]
    assert caption_character_names({"scene": "no characters key"}) == []
    assert caption_character_names(None) == []


def test_scores_match_sklearn_and_count_unparseable_and_off_roster_names_as_mistakes():
    gold = {1: ["Ellie"], 2: ["Ellie", "Victor"], 3: [], 4: ["Sprite"], 5: ["Victor"], 6: []}
    captions = {
        1: _caption("elly"),  # an alias, spelled lower-case: a hit
        2: _caption("Ellie"),  # Victor missed
        3: _caption(),  # nobody, rightly
        4: None,  # unparseable: names nobody, so Sprite is missed — and the frame still counts
        5: _caption("Victor", "a passer-by"),  # off the roster: a false positive
        6: _caption("Sprite", "Sprite"),  # a duplicate counts once
        7: _caption("Ellie"),  # no gold label for this frame: not scored
    }
    report = caption_character_scores(captions, gold, ROSTER)

    assert report.n == 6 and report.unmatched_predictions == [7]
    predicted_sets = [["Ellie"], ["Ellie"], [], [], ["Victor", "a passer-by"], ["Sprite"]]
    binarizer = MultiLabelBinarizer(classes=["Ellie", "Sprite", "Victor", "a passer-by"])
    labels = binarizer.fit_transform([gold[key] for key in range(1, 7)])
    predicted = binarizer.transform(predicted_sets)
    assert report.f1 == pytest.approx(f1_score(labels, predicted, average="samples", zero_division=1))
    # By hand: F1 per frame 1, 2/3, 1, 0, 2/3, 0; mistakes 0, 1, 0, 1, 1, 1.
    assert report.f1 == pytest.approx((1 + 2 / 3 + 1 + 0 + 2 / 3 + 0) / 6)
    assert report.mistakes == pytest.approx(4 / 6)
    frames = per_frame_scores(report)
    assert frames["characters_f1"] == pytest.approx({1: 1.0, 2: 2 / 3, 3: 1.0, 4: 0.0, 5: 2 / 3, 6: 0.0})
    assert frames["characters_mistakes"] == {1: 0.0, 2: 1.0, 3: 0.0, 4: 1.0, 5: 1.0, 6: 1.0}
    assert frames["characters_precision"][5] == pytest.approx(0.5) and frames["characters_recall"][2] == 0.5
    row = {row.key: row for row in report.rows}[5]
    assert row.unknown_predicted == ("a passer-by",) and row.false_positives == ("a passer-by",)
