"""Reads for evaluation pages: the report arranged as the paper's tables, charts, drill-down."""

from urllib.parse import urlencode

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.utils.html import escape

from apps.captioning.models import Caption
from apps.core.inputs import done_before, inputs_key
from apps.evaluation.models import CaptionScore, Comparison, ComparisonPipeline, EvalSet
from apps.labeling.models import LabelingProject
from apps.labeling.selectors import gold_label_map
from apps.modelhub.models import ModelVersion
from apps.modelhub.selectors import model_version_as_run
from apps.projects.models import Project
from apps.projects.selectors import roster_as_models_see_it

DEFAULT_PARAMS = {"token_limit": 1024, "bootstrap_resamples": 10_000, "seed": 0, "judge_max_new_tokens": 256}

TABLE1_METRICS = [
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "sample-F1 (paper: macro F1)"),
    ("mistakes", "# mistakes / frame"),
]


def comparison_list(*, project: Project) -> QuerySet[Comparison]:
    return Comparison.objects.filter(project=project).select_related("eval_set", "captioner", "judge", "job")


def comparison_get(*, project: Project, comparison_id: int) -> Comparison:
    comparison = comparison_list(project=project).filter(id=comparison_id).first()
    if comparison is None:
        raise Http404("No such comparison.")
    return comparison


def comparison_test_split(project: Project, detectors: list[ModelVersion]) -> tuple[dict[str, list[str]], str]:
    """The gold test split: the stored validation split of the SFT run behind a detector, so a
    fine-tuned detector is never scored on frames it trained on; else every final gold label."""
    for detector in detectors:
        run = getattr(detector, "training_run", None)
        if run is not None:
            return dict(run.validation_labels), f"validation split of training run #{run.id}"
    labelling = LabelingProject.objects.filter(project=project, status="ready").order_by("-gold_set__version").first()
    if labelling is None:
        return {}, ""
    labels = gold_label_map(labelling)
    return {str(k): v for k, v in labels.items()}, f"all final labels of gold set v{labelling.gold_set.version}"


def comparison_inputs_key(
    *,
    eval_set: EvalSet,
    captioner: ModelVersion,
    detectors: list[ModelVersion],
    judge: ModelVersion | None,
    test_labels: dict[str, list[str]],
    params: dict,
) -> str:
    project = eval_set.project
    return inputs_key(
        {
            "run": "evaluate",
            "eval_set": [eval_set.id, eval_set.frame_ids()],
            "captioner": model_version_as_run(captioner),
            "detectors": [model_version_as_run(detector) for detector in detectors],
            "judge": model_version_as_run(judge) if judge else None,
            "roster": roster_as_models_see_it(project=project),
            "schema": project.caption_schema_version,
            "clip": [settings.MODEL_PROFILE, project.clip_model_name, project.clip_pretrained],  # CLIPScore's
            "test_labels": test_labels,
            "params": params,
        }
    )


def comparison_done_before(
    *,
    eval_set: EvalSet,
    captioner: ModelVersion,
    detectors: list[ModelVersion],
    judge: ModelVersion | None,
    params: dict | None = None,
) -> Comparison | None:
    """A finished comparison with the inputs `comparison_start` would be given now."""
    test_labels, _ = comparison_test_split(eval_set.project, detectors)
    key = comparison_inputs_key(
        eval_set=eval_set,
        captioner=captioner,
        detectors=detectors,
        judge=judge,
        test_labels=test_labels,
        params={**DEFAULT_PARAMS, **(params or {})},
    )
    return done_before(Comparison.objects.filter(project=eval_set.project), key)


def character_roster(*, project: Project) -> dict[str, list[str]]:
    """Canonical name → aliases: how detections and captions are matched to the roster."""
    return {character.name: list(character.aliases) for character in project.characters.all()}


def caption_fields_by_frame(*, caption_run_id: int) -> dict[int, dict | None]:
    """Each captioned frame's parsed caption; None where it could not be parsed (it names nobody)."""
    captions = Caption.objects.filter(run_id=caption_run_id).values_list("asset_id", "fields", "ok")
    return {asset_id: fields if ok and fields else None for asset_id, fields, ok in captions}


# A judgement kept for good; an "error" (the judge's server failed to answer) is asked again.
JUDGED_STATUSES = ("ok", "unparsable")


def frames_to_judge(*, pipeline: ComparisonPipeline, asset_ids: list[int]) -> list[int]:
    """The frames among `asset_ids` (in their order) whose caption of the pipeline's run has no
    judgement yet."""
    captioned = set(
        Caption.objects.filter(run_id=pipeline.caption_run_id, asset_id__in=asset_ids).values_list(
            "asset_id", flat=True
        )
    )
    judged = set(
        CaptionScore.objects.filter(
            pipeline=pipeline, asset_id__in=asset_ids, judge_status__in=JUDGED_STATUSES
        ).values_list("asset_id", flat=True)
    )
    return [asset_id for asset_id in asset_ids if asset_id in captioned and asset_id not in judged]


def _cell(row: dict, key: str) -> dict:
    return {
        "mean": row.get(f"{key}_mean"),
        "std": row.get(f"{key}_std"),
        "sem": row.get(f"{key}_sem"),
        "n": row.get(f"{key}_n"),
    }


def _paired_cells(row: dict, scores: list[dict]) -> list[dict]:
    """One row of a paired-tests table (first, second) as one cell per score it holds."""
    cells = []
    for score in scores:
        key = score["key"]
        if f"{key}_n" not in row:
            continue
        cells.append(
            {
                "label": score["label"],
                "higher_is_better": score.get("higher_is_better"),
                "n": row[f"{key}_n"],
                "difference": row[f"{key}_mean_difference"],
                "ci": (row[f"{key}_ci_low"], row[f"{key}_ci_high"]),
                "p_t": row.get(f"{key}_p_t_test"),
                "p_t_holm": row.get(f"{key}_p_t_test_holm"),
                "p_w": row.get(f"{key}_p_wilcoxon"),
                "p_w_holm": row.get(f"{key}_p_wilcoxon_holm"),
                "no_difference": bool(row.get(f"{key}_no_difference")),
            }
        )
    return cells


def _paired_tables(rows: list[dict], scores: list[dict]) -> list[dict]:
    return [{"first": row["first"], "second": row["second"], "cells": _paired_cells(row, scores)} for row in rows]


def _test_split_columns(table1: list[dict], captions: list[dict]) -> list[dict]:
    """The gold-test-split table's columns: each detector's own answer (Table 1), then the
    characters of the captions its pipeline wrote; the no-detection pipeline has captions only."""

    def column(row: dict, kind: str) -> dict:
        query = {"detector": row["detector"]} if kind == "detector" else {"captions": row["pipeline"]}
        return {
            "title": row["detector"] if kind == "detector" else row["pipeline"],
            "kind": kind,
            "summary": row["summary"],
            "truth": row.get("truth_summary"),  # the demo world's truth, where the project has one
            "unparseable": row["unparseable"],
            "characters": row["characters"],
            "query": urlencode(query),
        }

    detectors = {row["detector"]: row for row in table1}
    columns = []
    for row in captions:
        if row["detector"] in detectors:
            columns.append(column(detectors.pop(row["detector"]), "detector"))
        columns.append(column(row, "captions"))
    return columns + [column(row, "detector") for row in detectors.values()]  # a report without captions here


def report_context(comparison: Comparison) -> dict:
    report = comparison.report or {}
    if not report:
        return {"report": None}
    meta = report["meta"]
    table1 = report["table1"]
    captions_test_split = report.get("captions_test_split") or {"pipelines": [], "table3": []}
    columns = _test_split_columns(table1, captions_test_split["pipelines"])
    test_split_rows = [
        {"label": label, "values": [column["summary"][key] for column in columns]} for key, label in TABLE1_METRICS
    ]
    if any(column["truth"] for column in columns):  # the demo world: the same answers against its truth
        test_split_rows += [
            {
                "label": f"{label} against the demo world's truth",
                "values": [column["truth"][key] if column["truth"] else None for column in columns],
            }
            for key, label in TABLE1_METRICS
            if key in ("f1", "mistakes")
        ]
    scores = meta["scores"]
    character_scores = meta.get("character_scores", [])
    table2_rows = [
        {"label": score["label"], "key": score["key"], "cells": [_cell(row, score["key"]) for row in report["table2"]]}
        for score in scores
    ]
    truth = report.get("captions_vs_truth")
    truth_rows = [
        {"label": score["label"], "cells": [_cell(row, score["key"]) for row in truth["table2"]]}
        for score in character_scores
    ] if truth else []  # fmt: skip
    chart = {
        "pipelines": meta["pipelines"],
        "scores": [
            {"label": s["label"], "means": [c["mean"] for c in r["cells"]], "sems": [c["sem"] for c in r["cells"]]}
            for s, r in zip(scores, table2_rows, strict=True)
            if s["key"].startswith("judge_") or s["key"] == "clip_score"
        ],
    }
    return {
        "report": report,
        "meta": meta,
        "table1": table1,
        "test_split_columns": columns,
        "test_split_rows": test_split_rows,
        "test_split_has_captions": bool(captions_test_split["pipelines"]),
        "test_split_tests": _paired_tables(captions_test_split["table3"], character_scores),
        "table2_rows": table2_rows,
        "table3": _paired_tables(report["table3"], scores),
        "truth": truth,
        "truth_rows": truth_rows,
        "truth_pipelines": [row["pipeline"] for row in truth["table2"]] if truth else [],
        "truth_tests": _paired_tables(truth["table3"], character_scores) if truth else [],
        "chart": chart,
        "chart_svg": bar_chart_svg(chart),
        "health": report["health"],
        "examples": report["examples"],
        "examples_compared": report.get("examples_compared", {}),
        "judge_unparsed": _judge_unparsed(meta, report["health"]),
    }


def _judge_unparsed(meta: dict, health: dict) -> list[dict]:
    """Pipelines whose captions were judged but none of whose judgements parsed: their judge rows
    are empty because the judge said nothing usable, not because its scores were low."""
    if not meta.get("judge"):
        return []
    rows = []
    for label in meta["pipelines"]:
        counts = health.get(label, {}).get("judge", {})
        judged = sum(n for status, n in counts.items() if status != "not judged")
        if judged and not counts.get("ok"):
            rows.append({"pipeline": label, "judged": judged, "counts": counts})
    return rows


def drill_down(
    comparison: Comparison, detector: str, character: str, kind: str, captions: str = ""
) -> tuple[list[dict], str]:
    """Per-frame rows of one column of the gold-test-split table — a detector's answers (Table 1),
    or with `captions` the characters of that pipeline's captions; with a character, its false
    positives (kind=fp), false negatives (kind=fn) or every frame that involves it."""
    report = comparison.report or {}
    if captions:
        columns = {row["pipeline"]: row for row in (report.get("captions_test_split") or {}).get("pipelines", [])}
        name, what = captions, f"captions of {captions}"
    else:
        columns = {row["detector"]: row for row in report.get("table1", [])}
        name, what = detector, detector
    if name not in columns:
        raise Http404("No such detector or pipeline in this comparison.")
    rows = columns[name]["rows"]
    title = f"{what}: {len(rows)} test frames"
    if character:
        entry = next((c for c in columns[name]["characters"] if c["name"] == character), None)
        if entry is None:
            raise Http404("No such character in this comparison.")
        keys = {"fp": entry["false_positive_keys"], "fn": entry["false_negative_keys"]}.get(kind)
        if keys is None:
            keys = [row["key"] for row in rows if character in row["predicted"] or character in row["gold"]]
        wanted = set(keys)
        rows = [row for row in rows if row["key"] in wanted]
        label = {"fp": "false positives", "fn": "false negatives"}.get(kind, "frames")
        title = f"{what}: {character}, {len(rows)} {label}"
    return sorted(rows, key=lambda row: (row["f1"], row["key"])), title


def bar_chart_svg(chart: dict, width: int = 760, height: int = 300) -> str:
    """Fig. 6 as inline SVG (means with ±1 s.e.m. bars), for the self-contained HTML file."""
    pipelines, groups = chart["pipelines"], chart["scores"]
    if not groups or not pipelines:
        return ""
    colours = ["#9aa5b1", "#4e6ef2", "#e0803a", "#3aa76d", "#b44fd1"]
    top = max([(m or 0) + (s or 0) for g in groups for m, s in zip(g["means"], g["sems"], strict=True)] + [1.0])
    left, bottom, plot_h = 40, 60, height - 80
    group_w = (width - left - 10) / len(groups)
    bar_w = group_w * 0.8 / len(pipelines)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">'
    ]
    for g_index, group in enumerate(groups):
        x0 = left + g_index * group_w + group_w * 0.1
        for p_index, (mean, sem) in enumerate(zip(group["means"], group["sems"], strict=True)):
            if mean is None:
                continue
            x = x0 + p_index * bar_w
            h = plot_h * mean / top
            y = height - bottom - h
            colour = colours[p_index % len(colours)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.9:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(pipelines[p_index])}: {mean:.3f}</title></rect>"
            )
            if sem:
                cx, dy = x + bar_w * 0.45, plot_h * sem / top
                parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y - dy:.1f}" y2="{y + dy:.1f}" stroke="#222"/>')
        label = escape(group["label"].replace(" (1–10)", "").replace(" (w = 2.5)", ""))
        parts.append(
            f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - bottom + 14}" text-anchor="middle">{label}</text>'
        )
    for p_index, name in enumerate(pipelines):
        parts.append(
            f'<rect x="{left + p_index * 180}" y="{height - 22}" width="10" height="10" '
            f'fill="{colours[p_index % len(colours)]}"/>'
        )
        parts.append(f'<text x="{left + p_index * 180 + 14}" y="{height - 13}">{escape(name)}</text>')
    parts.append(
        f'<line x1="{left}" x2="{width - 10}" y1="{height - bottom}" y2="{height - bottom}" stroke="#888"/></svg>'
    )
    return "".join(parts)
