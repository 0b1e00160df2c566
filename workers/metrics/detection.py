"""Instance-grounded character-detection metrics against the gold set (paper §3, Table 1).

For each frame, with gold set G and predicted set P:
    precision = |P∩G| / |P|    recall = |P∩G| / |G|    F1 = 2|P∩G| / (|P| + |G|)
    mistakes  = |P \\ G| + |G \\ P|   (false positives + false negatives)

Zero denominators (stated here once; docs/metrics.md repeats them):
- P = G = ∅ is a perfect answer: precision = recall = F1 = 1, mistakes = 0. Many frames show no
  character, and a detector that says so is right.
- Otherwise a zero denominator gives 0: P = ∅ ≠ G → precision 0, recall 0; P ≠ ∅ = G → precision 0,
  recall 0. F1 is then sklearn's with `zero_division=1` on every frame; precision (recall) is
  sklearn's `zero_division=1` where G (P) is empty too and `zero_division=0` elsewhere.
The same rule applies to the micro averages (totals over frames) and to each character's row.

Names are matched trimmed, whitespace-collapsed and case-folded, and mapped onto the roster
(canonical name or alias). Each frame's names are a set: a duplicate counts once (a replicated
character is tagged once), blank names are ignored. With a roster, a predicted name that is not
on it is a false positive that matches nothing; a gold name that is not on it is kept (it can
only be missed) and listed in `unknown_gold_names` so the app can warn that the roster changed.

Frames are aligned by key. The evaluated frames are the gold keys that have a prediction; gold
keys without one are listed in `missing_predictions` (pass [] for "the detector found nobody"),
predictions for keys outside the gold set in `unmatched_predictions`. Neither counts.
"""

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from workers.vlm.parsing import _roster_index


def set_scores(true_positives: int, predicted: int, actual: int) -> tuple[float, float, float]:
    """(precision, recall, F1) from counts, with the module's zero-denominator rule."""
    if predicted == 0 and actual == 0:
        return 1.0, 1.0, 1.0
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / actual if actual else 0.0
    return precision, recall, 2 * true_positives / (predicted + actual)


@dataclass(frozen=True)
class DetectionRow:
    """One frame: what the app shows when a user drills down from a number."""

    key: Hashable
    predicted: tuple[str, ...]  # canonical names, off-roster ones as written; sorted
    gold: tuple[str, ...]
    true_positives: tuple[str, ...]
    false_positives: tuple[str, ...]
    false_negatives: tuple[str, ...]
    unknown_predicted: tuple[str, ...]  # predicted names not on the roster (all false positives)
    precision: float
    recall: float
    f1: float
    mistakes: int


@dataclass(frozen=True)
class CharacterRow:
    """One character over all frames (sklearn's per-label scores); its frame keys for drill-down."""

    name: str
    on_roster: bool
    true_positives: int
    false_positives: int
    false_negatives: int
    support: int  # frames where the gold set has it
    predicted: int  # frames where the detector claimed it
    precision: float
    recall: float
    f1: float
    false_positive_keys: tuple[Hashable, ...]
    false_negative_keys: tuple[Hashable, ...]


@dataclass
class DetectionReport:
    rows: list[DetectionRow]
    characters: list[CharacterRow]
    missing_predictions: list[Hashable]
    unmatched_predictions: list[Hashable]
    unknown_gold_names: list[str]

    @property
    def n(self) -> int:
        return len(self.rows)

    def _mean(self, field: str) -> float | None:
        # No evaluated frame means no number, not a zero the app could mistake for a result.
        return sum(getattr(row, field) for row in self.rows) / self.n if self.rows else None

    @property
    def precision(self) -> float | None:
        return self._mean("precision")

    @property
    def recall(self) -> float | None:
        return self._mean("recall")

    @property
    def f1(self) -> float | None:
        """The paper's "macro F1": per-frame F1 averaged over frames (sklearn average="samples")."""
        return self._mean("f1")

    @property
    def mistakes(self) -> float | None:
        return self._mean("mistakes")

    def micro(self) -> tuple[float, float, float] | None:
        """(precision, recall, F1) of the counts summed over frames (sklearn average="micro")."""
        if not self.rows:
            return None
        true_positives = sum(len(row.true_positives) for row in self.rows)
        predicted = sum(len(row.predicted) for row in self.rows)
        actual = sum(len(row.gold) for row in self.rows)
        return set_scores(true_positives, predicted, actual)

    def character_macro(self) -> tuple[float, float, float] | None:
        """Per-character scores averaged over the characters that occur in gold or predictions
        (sklearn average="macro" on those labels): roster characters never seen would add free 1s."""
        seen = [row for row in self.characters if row.support or row.predicted]
        if not seen:
            return None
        return tuple(sum(getattr(row, field) for row in seen) / len(seen) for field in ("precision", "recall", "f1"))

    def summary(self) -> dict:
        micro = self.micro() or (None, None, None)
        macro = self.character_macro() or (None, None, None)
        return {
            "n": self.n,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "mistakes": self.mistakes,
            "micro_precision": micro[0],
            "micro_recall": micro[1],
            "micro_f1": micro[2],
            "character_macro_precision": macro[0],
            "character_macro_recall": macro[1],
            "character_macro_f1": macro[2],
            "missing_predictions": len(self.missing_predictions),
            "unmatched_predictions": len(self.unmatched_predictions),
            "unknown_gold_names": list(self.unknown_gold_names),
        }

    def to_dict(self) -> dict:
        return {
            "summary": self.summary(),
            "rows": [asdict(row) for row in self.rows],
            "characters": [asdict(row) for row in self.characters],
            "missing_predictions": list(self.missing_predictions),
            "unmatched_predictions": list(self.unmatched_predictions),
        }


class _Names:
    """Maps raw names onto canonical labels; off-roster spellings that fold alike become one label."""

    def __init__(self, roster: Mapping[str, Sequence[str]] | Iterable[str] | None):
        if roster is not None and not isinstance(roster, Mapping):
            roster = {name: [] for name in roster}
        self.roster = roster
        self.index = _roster_index({name: list(aliases) for name, aliases in roster.items()}) if roster else {}
        self.off_roster: dict[str, str] = {}  # folded → first spelling seen

    def labels(self, names: Iterable[str], key: Hashable) -> tuple[set[str], set[str]]:
        """(labels on the roster, labels off it); without a roster every label counts as on it."""
        if isinstance(names, str):
            raise TypeError(f"Frame {key!r}: expected a collection of names, got the string {names!r}.")
        known: set[str] = set()
        unknown: set[str] = set()
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"Frame {key!r}: character names must be strings, got {name!r}.")
            spelled = " ".join(name.split())
            if not spelled:
                continue
            folded = spelled.casefold()
            if folded in self.index:
                known.add(self.index[folded])
            else:
                label = self.off_roster.setdefault(folded, spelled)
                if self.roster is None:
                    known.add(label)
                else:
                    unknown.add(label)
        return known, unknown


def _sorted(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=lambda name: (name.casefold(), name)))


def detection_scores(
    predictions: Mapping[Hashable, Iterable[str]],
    gold: Mapping[Hashable, Iterable[str]],
    roster: Mapping[str, Sequence[str]] | Iterable[str] | None = None,
) -> DetectionReport:
    """Score predicted character sets against gold sets, frame by frame (see the module docstring).

    `roster`: canonical name → aliases (as `parse_detection` takes it), or just the names.
    """
    names = _Names(roster)
    rows: list[DetectionRow] = []
    unknown_gold: set[str] = set()
    for key, gold_names in gold.items():
        if key not in predictions:
            continue
        gold_known, gold_unknown = names.labels(gold_names, key)
        unknown_gold |= gold_unknown
        actual = gold_known | gold_unknown
        predicted_known, predicted_unknown = names.labels(predictions[key], key)
        true_positives = predicted_known & actual
        false_positives = (predicted_known - actual) | predicted_unknown
        false_negatives = actual - predicted_known
        predicted_count = len(predicted_known) + len(predicted_unknown)
        precision, recall, f1 = set_scores(len(true_positives), predicted_count, len(actual))
        rows.append(
            DetectionRow(
                key=key,
                predicted=_sorted(predicted_known | predicted_unknown),
                gold=_sorted(actual),
                true_positives=_sorted(true_positives),
                false_positives=_sorted(false_positives),
                false_negatives=_sorted(false_negatives),
                unknown_predicted=_sorted(predicted_unknown),
                precision=precision,
                recall=recall,
                f1=f1,
                mistakes=len(false_positives) + len(false_negatives),
            )
        )
    return DetectionReport(
        rows=rows,
        characters=_character_rows(rows, names),
        missing_predictions=[key for key in gold if key not in predictions],
        unmatched_predictions=[key for key in predictions if key not in gold],
        unknown_gold_names=list(_sorted(unknown_gold)),
    )


def _character_rows(rows: list[DetectionRow], names: _Names) -> list[CharacterRow]:
    on_roster = set(names.roster or ())
    labels = set(on_roster)
    for row in rows:
        labels.update(row.predicted, row.gold)
    characters = []
    for label in _sorted(labels):
        hits = [row.key for row in rows if label in row.true_positives]
        false_positive_keys = tuple(row.key for row in rows if label in row.false_positives)
        false_negative_keys = tuple(row.key for row in rows if label in row.false_negatives)
        support = len(hits) + len(false_negative_keys)
        predicted = len(hits) + len(false_positive_keys)
        precision, recall, f1 = set_scores(len(hits), predicted, support)
        characters.append(
            CharacterRow(
                name=label,
                on_roster=names.roster is None or label in on_roster,
                true_positives=len(hits),
                false_positives=len(false_positive_keys),
                false_negatives=len(false_negative_keys),
                support=support,
                predicted=predicted,
                precision=precision,
                recall=recall,
                f1=f1,
                false_positive_keys=false_positive_keys,
                false_negative_keys=false_negative_keys,
            )
        )
    return characters


def detection_table(reports: Mapping[str, DetectionReport]) -> list[dict]:
    """Table 1: one row per detector version (in the mapping's order), plain values for CSV/JSON."""
    return [
        {
            "detector": version,
            "n": report.n,
            "precision": report.precision,
            "recall": report.recall,
            "f1": report.f1,
            "mistakes": report.mistakes,
        }
        for version, report in reports.items()
    ]
