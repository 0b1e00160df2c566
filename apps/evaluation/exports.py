"""The report as files: JSON (everything, with every caption's scores) and CSV (tables + rows).

Both are streamed: a comparison of 100,000 frames and three pipelines has 300,000 caption rows
(tens of MB), read from the database a chunk at a time and sent as they are written, so the
download starts at once and the web worker never holds the whole file.
"""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import TypeVar

from apps.evaluation.models import CaptionScore, Comparison

ROWS_PER_CHUNK = 2000  # caption rows read (and sent) at a time

SCORE_FIELDS = (
    "asset_id",
    "tokens",
    "too_long",
    "adheres",
    "clip_score",
    "clip_chunked",
    "judge_status",
    "judge_overall",
)
CHARACTER_FIELDS = (
    "characters_reference",
    "characters_precision",
    "characters_recall",
    "characters_f1",
    "characters_mistakes",
)


def _scores(comparison: Comparison):
    return CaptionScore.objects.filter(pipeline__comparison=comparison).order_by("pipeline__position", "asset_id")


def caption_rows(comparison: Comparison) -> Iterator[dict]:
    """Every caption's scores, one dict a caption, read ROWS_PER_CHUNK at a time."""
    fields = ("pipeline__label", *SCORE_FIELDS, "judge_scores", *CHARACTER_FIELDS)
    for score in _scores(comparison).values(*fields).iterator(chunk_size=ROWS_PER_CHUNK):
        judge_scores = score.pop("judge_scores") or {}
        yield {
            "pipeline": score.pop("pipeline__label"),
            **{key: score[key] for key in SCORE_FIELDS},
            **{f"judge_{k}": v for k, v in sorted(judge_scores.items())},
            **{key: score[key] for key in CHARACTER_FIELDS},
        }


Item = TypeVar("Item")


def _batched(items: Iterable[Item]) -> Iterator[list[Item]]:
    size, batch = ROWS_PER_CHUNK, []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def report_json_chunks(comparison: Comparison) -> Iterator[str]:
    """The report as one JSON object, its tables first, then `captions`: every caption's scores."""
    yield "{"
    for key, value in comparison.report.items():
        if key != "captions":
            yield f"{json.dumps(key)}: {json.dumps(value)}, "
    yield '"captions": ['
    first = True
    for batch in _batched(json.dumps(row) for row in caption_rows(comparison)):
        yield ("" if first else ",\n") + ",\n".join(batch)
        first = False
    yield "]}\n"


def _judge_columns(comparison: Comparison) -> list[str]:
    """The judge's fields over every caption (a caption it could not judge has none)."""
    keys: set[str] = set()
    for judge_scores in _scores(comparison).values_list("judge_scores", flat=True).iterator(chunk_size=ROWS_PER_CHUNK):
        keys.update(judge_scores or {})
    return [f"judge_{key}" for key in sorted(keys)]


def report_csv_chunks(comparison: Comparison) -> Iterator[str]:
    """Sections one after another, each with its own header row (spreadsheets read it as is); the
    per-caption rows last, a chunk at a time."""
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
    fixed = ["pipeline", *SCORE_FIELDS, *CHARACTER_FIELDS]
    keys = sorted(fixed + _judge_columns(comparison), key=lambda k: (k not in ("pipeline", "asset_id"), k))
    writer.writerow(keys)
    yield buffer.getvalue()
    for rows in _batched(caption_rows(comparison)):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([[row.get(key) for key in keys] for row in rows])
        yield buffer.getvalue()
