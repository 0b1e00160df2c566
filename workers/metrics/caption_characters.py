"""The characters a caption names, scored like a detector's answer (paper §3's instance-grounded
metrics, applied to the `characters` field of structured captions).

A better detector is worth something only if its gain reaches the captions. Scoring the names in
each caption's `characters` field against the same reference a detector is scored against (the
gold test split, or the demo world's truth) shows whether it does, without a judge.

Frames are scored exactly as `detection_scores` scores detections — the same name matching, the
same zero-denominator rule, a name off the roster is a false positive — and an unparseable caption
names nobody, as Table 1 counts an unparseable detection: dropping it would flatter a pipeline
whose captioner fails to answer.
"""

from collections.abc import Hashable, Iterable, Mapping, Sequence

from workers.metrics.detection import DetectionReport, detection_scores

# Per-frame scores of the captions' characters, for the paired tests between pipelines:
# (key, label, higher is better).
CAPTION_CHARACTER_SCORES = [
    ("characters_precision", "Captions' characters: precision", True),
    ("characters_recall", "Captions' characters: recall", True),
    ("characters_f1", "Captions' characters: F1", True),
    ("characters_mistakes", "Captions' characters: # mistakes / frame", False),
]
# The scores the paired tests compare (Holm-corrected together); precision and recall are what F1
# and the mistakes are made of, shown as means but not tested again.
CAPTION_CHARACTER_TESTED = ("characters_f1", "characters_mistakes")


def caption_character_names(fields: Mapping | None) -> list[str]:
    """The names in a parsed caption's `characters` field, as written. `None` (a caption that could
    not be parsed) names nobody; so does an entry without a name."""
    if not fields:
        return []
    names = []
    for mention in fields.get("characters") or []:
        name = mention.get("name") if isinstance(mention, Mapping) else mention
        if isinstance(name, str):
            names.append(name)
    return names


def caption_character_scores(
    captions: Mapping[Hashable, Mapping | None],
    reference: Mapping[Hashable, Iterable[str]],
    roster: Mapping[str, Sequence[str]] | Iterable[str] | None = None,
) -> DetectionReport:
    """Score each frame's caption (its parsed fields, or None if unparseable) against the
    reference names of that frame; frames are aligned as `detection_scores` aligns them."""
    predicted = {key: caption_character_names(fields) for key, fields in captions.items()}
    return detection_scores(predicted, reference, roster)


def per_frame_scores(report: DetectionReport) -> dict[str, dict[Hashable, float]]:
    """Score key → frame key → value, the shape `workers.metrics.stats` compares pipelines in."""
    return {
        "characters_precision": {row.key: row.precision for row in report.rows},
        "characters_recall": {row.key: row.recall for row in report.rows},
        "characters_f1": {row.key: row.f1 for row in report.rows},
        "characters_mistakes": {row.key: float(row.mistakes) for row in report.rows},
    }
