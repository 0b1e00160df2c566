"""Per-frame set scores averaged over frames, with the empty-set conventions of the method."""

import pytest

from workers.train import detection_scores, frame_scores


def test_frame_scores_follow_the_set_definitions():
    assert frame_scores(["Ellie", "Victor"], ["Ellie"]) == (0.5, 1.0, pytest.approx(2 / 3), 1)
    assert frame_scores(["Ellie"], ["Ellie", "Victor", "Mira"]) == (1.0, pytest.approx(1 / 3), 0.5, 2)


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        ([], [], (1.0, 1.0, 1.0, 0)),  # nobody there, nobody named: a perfect answer
        ([], ["Ellie"], (0.0, 0.0, 0.0, 1)),
        (["Ellie"], [], (0.0, 0.0, 0.0, 1)),
        (["Ellie", "Ellie"], ["Ellie"], (1.0, 1.0, 1.0, 0)),  # a name counts once
    ],
)
def test_empty_sets_and_duplicates(predicted, gold, expected):
    assert frame_scores(predicted, gold) == expected


def test_scores_are_averaged_per_frame():
    scores = detection_scores([["Ellie"], [], ["Mira", "Tock"]], [["Ellie"], ["Bruno"], ["Mira"]])
    assert scores.frames == 3
    assert scores.precision == pytest.approx((1 + 0 + 0.5) / 3)
    assert scores.recall == pytest.approx((1 + 0 + 1) / 3)
    assert scores.sample_f1 == pytest.approx((1 + 0 + 2 / 3) / 3)
    assert scores.mistakes == pytest.approx((0 + 1 + 1) / 3)
    with pytest.raises(ValueError):
        detection_scores([["Ellie"]], [])
