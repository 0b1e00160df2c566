"""The evaluation job: run every pipeline, score every caption, build the report.

1. Each detector detects on the gold test split (Table 1) and on the eval set.
2. The captioner captions the eval set once per pipeline (no detection, then each detector).
   Both steps are ordinary detection / caption runs (their own jobs, run here one after the
   other), so they show on the runs page and a retried evaluation reuses what finished.
3. Model-free (length in the captioner's tokens, structure adherence), CLIPScore and the judge.
4. The report: tables, statistics and examples, stored as JSON on the comparison.
"""

import time
from typing import Any

from django.conf import settings

from apps.captioning.handlers import character_cards, roster_with_references
from apps.captioning.models import Caption, Detection, DetectionRun
from apps.captioning.services import caption_run_start, detection_run_start
from apps.core.files import local_paths
from apps.evaluation import report as report_builder
from apps.evaluation.models import CaptionScore, Comparison, ComparisonPipeline
from apps.jobs.kinds import job_kind
from apps.jobs.models import Job
from apps.jobs.runner import JobContext, job_execute
from apps.media.models import Asset
from apps.modelhub.specs import model_spec_for


def _vlm_queue() -> str:
    return settings.VLM_QUEUE


def _comparison_param(params: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(params.get("comparison_id"), int):
        raise ValueError("comparison_id must be an integer")
    return {"comparison_id": params["comparison_id"]}


def _run_child(job: Job, ctx: JobContext, fraction: float, message: str) -> None:
    """Run a child job here (or wait for the worker that has it) and require its success."""
    ctx.progress(fraction, message)
    job_execute(job.id)
    while not (job := Job.objects.get(id=job.id)).is_finished:
        if job.status == "queued":  # re-queued by the sweeper (its worker died): this worker may be the only one
            job_execute(job.id)
        else:
            ctx.progress(fraction, f"{message} (running elsewhere)")
            time.sleep(1.0)
    if job.status != "succeeded":
        raise RuntimeError(f"{job.kind} job #{job.id} ended {job.status}: {job.error or job.message}")


def _detections(pipeline: ComparisonPipeline, comparison: Comparison, ctx: JobContext, fraction: float) -> None:
    project, detector = comparison.project, pipeline.detector
    if comparison.test_labels and pipeline.test_detection_run is None:
        pipeline.test_detection_run = detection_run_start(
            project=project, model_version=detector, asset_ids=[int(k) for k in comparison.test_labels],
            created_by=None, enqueue=False,
        )  # fmt: skip
        pipeline.save(update_fields=["test_detection_run"])
    if pipeline.eval_detection_run is None:
        pipeline.eval_detection_run = detection_run_start(
            project=project, model_version=detector, asset_ids=comparison.eval_set.asset_ids, created_by=None,
            enqueue=False,
        )  # fmt: skip
        pipeline.save(update_fields=["eval_detection_run"])
    for run, what in ((pipeline.test_detection_run, "gold test split"), (pipeline.eval_detection_run, "eval set")):
        if run is not None:
            _run_child(run.job, ctx, fraction, f"{detector.name} detects on the {what}")


def _captions(pipeline: ComparisonPipeline, comparison: Comparison, ctx: JobContext, fraction: float) -> None:
    if pipeline.caption_run is None:
        detection_run = (  # fresh from the database: its job has just finished
            DetectionRun.objects.select_related("job").get(id=pipeline.eval_detection_run_id)
            if pipeline.eval_detection_run_id
            else None
        )
        pipeline.caption_run = caption_run_start(
            project=comparison.project,
            model_version=comparison.captioner,
            pipeline="detection" if pipeline.detector_id else "no_detection",
            detection_run=detection_run,
            asset_ids=comparison.eval_set.asset_ids,
            created_by=None,
            enqueue=False,
        )
        pipeline.save(update_fields=["caption_run"])
    _run_child(pipeline.caption_run.job, ctx, fraction, f"Captioning the eval set: {pipeline.label}")


def _tokenizer(captioner_spec):
    """The captioner's own tokenizer: caption length is counted in what the captioner reads."""
    from transformers import AutoTokenizer

    if captioner_spec.backend != "transformers":
        return str.split, "whitespace words (the captioner is served remotely)"
    tokenizer = AutoTokenizer.from_pretrained(captioner_spec.model)
    return (lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]), f"{captioner_spec.name} tokens"


def _score(comparison: Comparison, pipelines: list[ComparisonPipeline], ctx: JobContext) -> dict[str, Any]:
    from workers.metrics.clipscore import clip_scores_for_images, load_clip_scorer
    from workers.metrics.health import HealthConfig, caption_health
    from workers.metrics.judge import JudgeItem, judge_captions
    from workers.vision.profiles import clip_spec
    from workers.vlm.backends import load_backend
    from workers.vlm.parsing import caption_paragraph

    project = comparison.project
    tokenize, token_unit = _tokenizer(model_spec_for(comparison.captioner))
    health_config = HealthConfig(token_limit=comparison.params["token_limit"])
    assets = {a.id: a for a in Asset.objects.filter(project=project, id__in=comparison.eval_set.asset_ids)}
    clip = clip_spec(settings.MODEL_PROFILE, settings.MODELS_DIR, project.clip_model_name, project.clip_pretrained)
    ctx.progress(0.8, "Loading CLIP for CLIPScore")
    model, preprocess, clip_tokenizer = load_clip_scorer(clip, _device())
    judge = None
    if comparison.judge is not None:
        ctx.progress(0.82, f"Loading the judge {comparison.judge.name}")
        judge = load_backend(model_spec_for(comparison.judge, max_new_tokens=comparison.params["judge_max_new_tokens"]))
    characters, references = roster_with_references(project)
    ids = list(comparison.eval_set.asset_ids)
    with (
        local_paths([ref.image for ref in references]) as reference_paths,
        local_paths([assets[i].image for i in ids]) as frame_paths,
    ):
        cards = list(character_cards(characters, references, reference_paths).values())
        paths = dict(zip(ids, frame_paths, strict=True))
        for index, pipeline in enumerate(pipelines):
            captions = {c.asset_id: c for c in Caption.objects.filter(run=pipeline.caption_run)}
            texts = {i: caption_paragraph(c.fields) if c.fields else c.raw_text for i, c in captions.items()}
            clip_rows = {
                row.key: row
                for row in clip_scores_for_images(
                    model, preprocess, clip_tokenizer, [(i, paths[i]) for i in ids], texts
                ).rows
            }
            judged = {}
            if judge is not None:
                items = [
                    JudgeItem(i, paths[i], captions[i].fields or captions[i].raw_text) for i in ids if i in captions
                ]
                judged = {row.key: row for row in judge_captions(judge, items, cards).rows}
            for asset_id in ids:
                caption = captions.get(asset_id)
                health = caption_health(asset_id, caption.raw_text if caption else "", tokenize, health_config)
                clip_row, judge_row = clip_rows.get(asset_id), judged.get(asset_id)
                CaptionScore.objects.update_or_create(
                    pipeline=pipeline,
                    asset_id=asset_id,
                    defaults={
                        "tokens": health.tokens,
                        "too_long": health.too_long,
                        "adheres": health.adheres,
                        "health": {
                            "parsed": health.parsed, "repairs": list(health.repairs),
                            "missing": list(health.missing_fields), "empty": list(health.empty_fields),
                            "error": health.error,
                        },
                        "clip_score": clip_row.clip_score if clip_row else None,
                        "clip_chunked": bool(clip_row and clip_row.chunked),
                        "judge_status": judge_row.status if judge_row else "",
                        "judge_scores": dict(judge_row.scores or {}) if judge_row else {},
                        "judge_overall": judge_row.overall if judge_row else None,
                        "judge_raw": (judge_row.raw if judge_row else "")[:4000],
                    },
                )  # fmt: skip
            ctx.progress(0.84 + 0.14 * (index + 1) / len(pipelines), f"Scored {pipeline.label}")
    return {"token_unit": token_unit, "clip_model": clip.key, "judge": judge.spec.version if judge else None}


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@job_kind(name="evaluate", label="Evaluate captioning pipelines", queue=_vlm_queue, clean_params=_comparison_param)
def evaluate(job: Job, ctx: JobContext) -> dict[str, Any]:
    comparison = Comparison.objects.select_related("project", "eval_set", "captioner", "judge").get(
        id=job.params["comparison_id"], project=job.project
    )
    pipelines = list(comparison.pipelines.select_related("detector", "caption_run__job").order_by("position"))
    detecting = [p for p in pipelines if p.detector_id]
    for index, pipeline in enumerate(detecting):
        _detections(pipeline, comparison, ctx, 0.4 * index / len(detecting))
    for index, pipeline in enumerate(pipelines):
        _captions(pipeline, comparison, ctx, 0.4 + 0.4 * index / len(pipelines))
    scoring = _score(comparison, pipelines, ctx)
    ctx.progress(0.99, "Building the report")
    comparison.report = report_builder.build(comparison, scoring)
    comparison.save(update_fields=["report", "updated_at"])
    detections = Detection.objects.filter(run__in=[p.eval_detection_run_id for p in detecting]).count()
    return {"pipelines": len(pipelines), "frames": len(comparison.eval_set.asset_ids), "detections": detections}
