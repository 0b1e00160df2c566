"""The report as files: JSON (everything, with every caption's scores) and CSV (tables + rows)."""

import csv
import io

from apps.evaluation.models import CaptionScore, Comparison


def caption_rows(comparison: Comparison) -> list[dict]:
    rows = []
    scores = (
        CaptionScore.objects.filter(pipeline__comparison=comparison)
        .select_related("pipeline")
        .order_by("pipeline__position", "asset_id")
    )
    for score in scores:
        rows.append(
            {
                "pipeline": score.pipeline.label,
                "asset_id": score.asset_id,
                "tokens": score.tokens,
                "too_long": score.too_long,
                "adheres": score.adheres,
                "clip_score": score.clip_score,
                "clip_chunked": score.clip_chunked,
                "judge_status": score.judge_status,
                "judge_overall": score.judge_overall,
                **{f"judge_{k}": v for k, v in sorted(score.judge_scores.items())},
                "characters_reference": score.characters_reference,
                "characters_precision": score.characters_precision,
                "characters_recall": score.characters_recall,
                "characters_f1": score.characters_f1,
                "characters_mistakes": score.characters_mistakes,
            }
        )
    return rows


def report_json(comparison: Comparison) -> dict:
    return {**comparison.report, "captions": caption_rows(comparison)}


def report_csv(comparison: Comparison) -> str:
    """Sections one after another, each with its own header row (spreadsheets read it as is)."""
    report = comparison.report
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["# VIVECaption comparison", comparison.id, "profile", report["meta"]["profile"]])
    writer.writerow([])
    writer.writerow(["# Table 1: detectors on the gold test split", report["meta"]["test_split"]])
    writer.writerow(["detector", "n", "precision", "recall", "sample_f1", "mistakes", "unparseable"])
    for row in report["table1"]:
        s = row["summary"]
        writer.writerow(
            [row["detector"], s["n"], s["precision"], s["recall"], s["f1"], s["mistakes"], row["unparseable"]]
        )
    test_split = report.get("captions_test_split") or {"pipelines": [], "table3": []}
    writer.writerow([])
    writer.writerow(["# Captions' characters on the gold test split (beside Table 1)", report["meta"]["test_split"]])
    writer.writerow(["pipeline", "detector", "n", "precision", "recall", "sample_f1", "mistakes", "unparseable"])
    for row in test_split["pipelines"]:
        s = row["summary"]
        writer.writerow(
            [row["pipeline"], row["detector"], s["n"], s["precision"], s["recall"], s["f1"], s["mistakes"]]
            + [row["unparseable"]]
        )
    truth = report.get("captions_vs_truth") or {"table2": [], "table3": []}
    for title, rows in (
        ("# Table 2: mean, std, sem, n per pipeline", report["table2"]),
        ("# Table 3: paired tests", report["table3"]),
        ("# Captions' characters on the gold test split: paired tests", test_split["table3"]),
        ("# Captions' characters against the demo world's truth: mean, std, sem, n per pipeline", truth["table2"]),
        ("# Captions' characters against the demo world's truth: paired tests", truth["table3"]),
    ):
        writer.writerow([])
        writer.writerow([title])
        if rows:
            keys = list(rows[0])
            writer.writerow(keys)
            writer.writerows([[row.get(key) for key in keys] for row in rows])
    writer.writerow([])
    writer.writerow(["# Per caption"])
    captions = caption_rows(comparison)
    if captions:
        keys = sorted({key for row in captions for key in row}, key=lambda k: (k not in ("pipeline", "asset_id"), k))
        writer.writerow(keys)
        writer.writerows([[row.get(key) for key in keys] for row in captions])
    return buffer.getvalue()
