"""A comparison's report as plain JSON: the paper's Tables 1–3, Fig. 6's bars, the health check,
examples — and the captions' characters scored like the detectors (on the gold test split against
the gold labels, on the eval set against the demo world's truth where there is one). Built once by
the evaluation job; pages, CSV, JSON and the HTML file all read it."""

from collections import Counter
from datetime import UTC, datetime

import numpy as np

from apps.captioning.models import Detection
from apps.evaluation.models import CaptionScore, CharacterReference, Comparison
from apps.evaluation.selectors import caption_fields_by_frame, character_roster
from apps.media.selectors import ground_truth_names
from workers.metrics.caption_characters import (
    CAPTION_CHARACTER_SCORES,
    CAPTION_CHARACTER_TESTED,
    caption_character_scores,
    per_frame_scores,
)
from workers.metrics.detection import detection_scores
from workers.metrics.judge import JUDGE_FIELDS, JUDGE_RUBRIC_VERSION, judge_agreement
from workers.metrics.stats import StatsConfig, comparison_table, summary_table

# (key, label, higher is better)
SCORES = [
    ("judge_overall", "Judge: overall (1–10)", True),
    *((f"judge_{field}", f"Judge: {field.replace('_', ' ')} (1–10)", True) for field in JUDGE_FIELDS),
    ("clip_score", "CLIPScore (w = 2.5)", True),
    ("tokens", "Caption length (tokens)", None),
]
CHARACTER_KEYS = [key for key, _, _ in CAPTION_CHARACTER_SCORES]
HISTOGRAM_BINS = 20
EXAMPLES = 12


def _scores_by_pipeline(comparison: Comparison) -> dict[str, dict[str, dict[int, float]]]:
    table: dict[str, dict[str, dict[int, float]]] = {}
    for pipeline in comparison.pipelines.order_by("position"):
        scores: dict[str, dict[int, float]] = {key: {} for key in [*(key for key, _, _ in SCORES), *CHARACTER_KEYS]}
        for row in CaptionScore.objects.filter(pipeline=pipeline):
            scores["tokens"][row.asset_id] = row.tokens
            if row.characters_reference == CharacterReference.TRUTH:
                for key in CHARACTER_KEYS:
                    scores[key][row.asset_id] = float(getattr(row, key))
            if row.clip_score is not None:
                scores["clip_score"][row.asset_id] = row.clip_score
            if row.judge_status == "ok":  # unparsable judgements are excluded, never guessed
                scores["judge_overall"][row.asset_id] = row.judge_overall
                for field in JUDGE_FIELDS:
                    scores[f"judge_{field}"][row.asset_id] = row.judge_scores[field]
        table[pipeline.label] = scores
    return table


def _table1(comparison: Comparison, roster: dict[str, list[str]]) -> list[dict]:
    """Instance-grounded scores of each detector on the gold test split. An unparseable answer
    counts as "nobody" (a wrong answer), never as a missing one: dropping it would flatter a
    detector that fails to answer."""
    rows = []
    gold = {int(key): names for key, names in comparison.test_labels.items()}
    truth = _test_split_truth(comparison)
    for pipeline in comparison.pipelines.filter(test_detection_run__isnull=False).select_related("detector"):
        predicted = {
            asset_id: (names if ok else [])
            for asset_id, names, ok in Detection.objects.filter(run=pipeline.test_detection_run).values_list(
                "asset_id", "names", "ok"
            )
        }
        report = detection_scores(predicted, gold, roster).to_dict()
        unparseable = Detection.objects.filter(run=pipeline.test_detection_run, ok=False).count()
        rows.append(
            {
                "detector": pipeline.detector.name,
                "unparseable": unparseable,
                **report,
                "truth_summary": detection_scores(predicted, truth, roster).summary() if truth else None,
            }
        )
    return rows


def _test_split_truth(comparison: Comparison) -> dict[int, list[str]]:
    """Who the demo world put in each test-split frame: the same answers are also scored against
    it, since the annotators' gold labels hold their mistakes. Empty for a real project."""
    return ground_truth_names(project=comparison.project, asset_ids=[int(key) for key in comparison.test_labels])


def _captions_on_test_split(
    comparison: Comparison, roster: dict[str, list[str]], pairs: list[tuple[str, str]], config: StatsConfig
) -> dict:
    """Each pipeline's captions of the gold test split, their characters scored against the gold
    labels exactly as Table 1 scores the detectors, so the two sit side by side: does a detector's
    gain reach the captions? Plus the paired tests between pipelines on those frames."""
    gold = {int(key): names for key, names in comparison.test_labels.items()}
    truth = _test_split_truth(comparison)
    rows, scores = [], {}
    pipelines = comparison.pipelines.filter(test_caption_run__isnull=False).select_related("detector")
    for pipeline in pipelines.order_by("position"):
        captions = caption_fields_by_frame(caption_run_id=pipeline.test_caption_run_id)
        report = caption_character_scores(captions, gold, roster)
        rows.append(
            {
                "pipeline": pipeline.label,
                "detector": pipeline.detector.name if pipeline.detector_id else None,
                "unparseable": sum(fields is None for fields in captions.values()),
                **report.to_dict(),
                "truth_summary": caption_character_scores(captions, truth, roster).summary() if truth else None,
            }
        )
        scores[pipeline.label] = per_frame_scores(report)
    tested = [(first, second) for first, second in pairs if first in scores and second in scores]
    return {"pipelines": rows, "table3": comparison_table(scores, tested, CAPTION_CHARACTER_TESTED, config)}


def _captions_against_truth(
    scores: dict[str, dict[str, dict[int, float]]], pairs: list[tuple[str, str]], config: StatsConfig
) -> dict:
    """The eval-set captions' characters against the demo world's truth (stored per caption by the
    evaluation): means per pipeline and the paired tests. A real project has no truth: empty."""
    frames = {asset_id for pipeline in scores.values() for asset_id in pipeline["characters_f1"]}
    if not frames:
        return {"reference": None, "frames": 0, "table2": [], "table3": []}
    return {
        "reference": CharacterReference.TRUTH.label,
        "frames": len(frames),
        "table2": summary_table(scores, CHARACTER_KEYS),
        "table3": comparison_table(scores, pairs, CAPTION_CHARACTER_TESTED, config),
    }


def _judge_against_truth(scores: dict[str, dict[str, dict[int, float]]]) -> list[dict]:
    """How far the judge's scores follow the captions' characters F1 against the demo world's
    truth: its `characters` score (the field that truth grades) and its overall score. Empty
    without a truth or a judge."""
    reference = {label: pipeline["characters_f1"] for label, pipeline in scores.items()}
    rows = []
    for key in ("judge_characters", "judge_overall"):
        judged = {label: pipeline[key] for label, pipeline in scores.items()}
        agreement = judge_agreement(judged, reference)
        if agreement.n:
            rows.append({"score": key, "label": dict((k, label) for k, label, _ in SCORES)[key], **agreement.to_dict()})
    return rows


def _health(comparison: Comparison) -> dict[str, dict]:
    out = {}
    token_limit = comparison.params["token_limit"]
    for pipeline in comparison.pipelines.order_by("position"):
        rows = list(CaptionScore.objects.filter(pipeline=pipeline))
        tokens = np.asarray([row.tokens for row in rows], dtype=np.float64)
        counts, edges = np.histogram(tokens, bins=HISTOGRAM_BINS) if len(tokens) else ([], [])
        empty = Counter(field for row in rows for field in row.health.get("empty", []))
        missing = Counter(field for row in rows for field in row.health.get("missing", []))
        out[pipeline.label] = {
            "n": len(rows),
            "adheres": sum(row.adheres for row in rows),
            "parsed": sum(bool(row.health.get("parsed")) for row in rows),
            "repaired": sum(bool(row.health.get("repairs")) for row in rows),
            "too_long": sum(row.too_long for row in rows),
            "token_limit": token_limit,
            "tokens_mean": float(tokens.mean()) if len(tokens) else None,
            "tokens_max": int(tokens.max()) if len(tokens) else None,
            "histogram_counts": [int(c) for c in counts],
            "histogram_edges": [float(e) for e in edges],
            "empty_fields": dict(empty),
            "missing_fields": dict(missing),
            "clip_chunked": sum(row.clip_chunked for row in rows),
            "judge": dict(Counter(row.judge_status or "not judged" for row in rows)),
        }
    return out


def _examples(scores: dict[str, dict[str, dict[int, float]]], labels: list[str]) -> tuple[list[dict], dict]:
    """Frames where the first and the last pipeline differ most (judge overall, else CLIPScore);
    frames they scored the same are no example of a difference. Also what was compared."""
    if len(labels) < 2:
        return [], {"score": None, "frames": 0}
    first, last = scores[labels[0]], scores[labels[-1]]
    candidates = []  # (key, shared frames, frames that differ) — the judge first, else CLIPScore
    for key in ("judge_overall", "clip_score"):
        common = set(first[key]) & set(last[key])
        candidates.append((key, common, [a for a in common if abs(last[key][a] - first[key][a]) > 1e-9]))
    key, common, differing = next(
        (c for c in candidates if c[2]), next((c for c in candidates if c[1]), candidates[-1])
    )
    ranked = sorted(differing, key=lambda asset_id: -abs(last[key][asset_id] - first[key][asset_id]))[:EXAMPLES]
    compared = {"score": key, "frames": len(common), "differing": len(differing)}
    return [
        {
            "asset_id": a,
            "score": key,
            "first": first[key][a],
            "last": last[key][a],
            "difference": last[key][a] - first[key][a],
        }
        for a in ranked
    ], compared


def build(comparison: Comparison, scoring: dict) -> dict:
    labels = list(comparison.pipelines.order_by("position").values_list("label", flat=True))
    roster = character_roster(project=comparison.project)
    scores = _scores_by_pipeline(comparison)
    names = [key for key, _, _ in SCORES]
    config = StatsConfig(n_resamples=comparison.params["bootstrap_resamples"], seed=comparison.params["seed"])
    pairs = [(labels[0], label) for label in labels[1:]] + [
        (a, b) for i, a in enumerate(labels[1:], 1) for b in labels[i + 1 :]
    ]
    examples, examples_compared = _examples(scores, labels)
    judged = [value for label in labels for value in scores[label]["judge_overall"].values()]
    return {
        "meta": {
            "profile": comparison.profile,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "captioner": comparison.captioner.name,
            "judge": scoring.get("judge"),
            "judge_rubric": JUDGE_RUBRIC_VERSION if comparison.judge_id else None,
            # A judge that gives every caption of every pipeline the same score tells them apart
            # in no way (e.g. an untrained toy): the page says so instead of showing ties as results.
            "judge_constant": len(judged) > 1 and len(set(judged)) == 1,
            "eval_set": str(comparison.eval_set),
            "eval_frames": comparison.eval_set.frame_count,
            "test_split": comparison.test_split_source,
            "test_frames": len(comparison.test_labels),
            "token_unit": scoring.get("token_unit"),
            "clip_model": scoring.get("clip_model"),
            "pipelines": labels,
            "scores": [{"key": key, "label": label, "higher_is_better": better} for key, label, better in SCORES],
            "character_scores": [
                {"key": key, "label": label, "higher_is_better": better}
                for key, label, better in CAPTION_CHARACTER_SCORES
            ],
        },
        "table1": _table1(comparison, roster),
        "table2": summary_table(scores, names),
        "table3": comparison_table(scores, pairs, [n for n in names if n != "tokens"], config) if pairs else [],
        "captions_test_split": _captions_on_test_split(comparison, roster, pairs, config),
        "captions_vs_truth": {**_captions_against_truth(scores, pairs, config), "judge": _judge_against_truth(scores)},
        "health": _health(comparison),
        "examples": examples,
        "examples_compared": examples_compared,
    }
