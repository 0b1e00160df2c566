"""A comparison's report as plain JSON: the paper's Tables 1–3, Fig. 6's bars, the health check,
examples. Built once by the evaluation job; pages, CSV, JSON and the HTML file all read it."""

from collections import Counter
from datetime import UTC, datetime

import numpy as np

from apps.captioning.models import Detection
from apps.evaluation.models import CaptionScore, Comparison
from workers.metrics.detection import detection_scores
from workers.metrics.judge import JUDGE_FIELDS, JUDGE_RUBRIC_VERSION
from workers.metrics.stats import StatsConfig, comparison_table, summary_table

# (key, label, higher is better)
SCORES = [
    ("judge_overall", "Judge: overall (1–10)", True),
    *((f"judge_{field}", f"Judge: {field.replace('_', ' ')} (1–10)", True) for field in JUDGE_FIELDS),
    ("clip_score", "CLIPScore (w = 2.5)", True),
    ("tokens", "Caption length (tokens)", None),
]
HISTOGRAM_BINS = 20
EXAMPLES = 12


def _scores_by_pipeline(comparison: Comparison) -> dict[str, dict[str, dict[int, float]]]:
    table: dict[str, dict[str, dict[int, float]]] = {}
    for pipeline in comparison.pipelines.order_by("position"):
        scores: dict[str, dict[int, float]] = {key: {} for key, _, _ in SCORES}
        for row in CaptionScore.objects.filter(pipeline=pipeline):
            scores["tokens"][row.asset_id] = row.tokens
            if row.clip_score is not None:
                scores["clip_score"][row.asset_id] = row.clip_score
            if row.judge_status == "ok":  # unparsable judgements are excluded, never guessed
                scores["judge_overall"][row.asset_id] = row.judge_overall
                for field in JUDGE_FIELDS:
                    scores[f"judge_{field}"][row.asset_id] = row.judge_scores[field]
        table[pipeline.label] = scores
    return table


def _table1(comparison: Comparison, roster: list[str]) -> list[dict]:
    """Instance-grounded scores of each detector on the gold test split. An unparseable answer
    counts as "nobody" (a wrong answer), never as a missing one: dropping it would flatter a
    detector that fails to answer."""
    rows = []
    gold = {int(key): names for key, names in comparison.test_labels.items()}
    for pipeline in comparison.pipelines.filter(test_detection_run__isnull=False).select_related("detector"):
        predicted = {
            asset_id: (names if ok else [])
            for asset_id, names, ok in Detection.objects.filter(run=pipeline.test_detection_run).values_list(
                "asset_id", "names", "ok"
            )
        }
        report = detection_scores(predicted, gold, roster).to_dict()
        unparseable = Detection.objects.filter(run=pipeline.test_detection_run, ok=False).count()
        rows.append({"detector": pipeline.detector.name, "unparseable": unparseable, **report})
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
    roster = sorted(comparison.project.characters.values_list("name", flat=True))
    scores = _scores_by_pipeline(comparison)
    names = [key for key, _, _ in SCORES]
    config = StatsConfig(n_resamples=comparison.params["bootstrap_resamples"], seed=comparison.params["seed"])
    pairs = [(labels[0], label) for label in labels[1:]] + [
        (a, b) for i, a in enumerate(labels[1:], 1) for b in labels[i + 1 :]
    ]
    examples, examples_compared = _examples(scores, labels)
    return {
        "meta": {
            "profile": comparison.profile,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "captioner": comparison.captioner.name,
            "judge": scoring.get("judge"),
            "judge_rubric": JUDGE_RUBRIC_VERSION if comparison.judge_id else None,
            "eval_set": str(comparison.eval_set),
            "eval_frames": len(comparison.eval_set.asset_ids),
            "test_split": comparison.test_split_source,
            "test_frames": len(comparison.test_labels),
            "token_unit": scoring.get("token_unit"),
            "clip_model": scoring.get("clip_model"),
            "pipelines": labels,
            "scores": [{"key": key, "label": label, "higher_is_better": better} for key, label, better in SCORES],
        },
        "table1": _table1(comparison, roster),
        "table2": summary_table(scores, names),
        "table3": comparison_table(scores, pairs, [n for n in names if n != "tokens"], config) if pairs else [],
        "health": _health(comparison),
        "examples": examples,
        "examples_compared": examples_compared,
    }
