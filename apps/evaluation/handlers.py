"""The evaluation job: run every pipeline, score every caption, build the report.

The evaluation itself loads no model. It is a parent job that starts its stages as child jobs,
each on its own queue — so each model loads in its own worker process (one task per GPU worker
child) and is freed when its stage ends — and sleeps (`waiting`) until they have ended:
1. detection: each detector on the gold test split (Table 1) and on the eval set;
2. captions: the captioner once per pipeline (no detection, then each detector's detections) on
   the eval set, and once more on the gold test split (its characters scored against the gold);
3. scores: CLIPScore (on the embedding queue) and the judge (on the VLM queue);
4. here, on the CPU: the model-free checks (length in the captioner's tokens, adherence, the
   captions' characters against the demo world's truth) and the report, stored as JSON on the
   comparison.
Stages 1–2 are ordinary detection / caption runs, so they show on the runs page. Each time the
parent wakes it runs from the top and finds what already exists, so a retry redoes nothing; a
cancel of the evaluation reaches the stage that is running.
"""

from typing import Any

from django.conf import settings

from apps.captioning.handlers import character_cards, roster_with_references
from apps.captioning.models import Caption, Detection, DetectionRun
from apps.captioning.services import caption_run_start, detection_run_start
from apps.core.files import local_paths
from apps.evaluation import report as report_builder
from apps.evaluation import selectors, services
from apps.evaluation.models import CharacterReference, Comparison, ComparisonPipeline
from apps.jobs.kinds import EMBED_QUEUE, VLM_QUEUE, id_params, job_kind
from apps.jobs.models import Job, JobStatus
from apps.jobs.runner import JobCancelled, JobContext
from apps.jobs.services import job_create
from apps.media.models import Asset
from apps.media.selectors import ground_truth_names
from apps.modelhub.specs import model_spec_for
from workers.metrics.caption_characters import caption_character_scores

# Each step's share of the evaluation's progress bar.
DETECTION_SPAN = (0.0, 0.35)
CAPTION_SPAN = (0.35, 0.7)
SCORE_SPAN = (0.7, 0.95)


def _comparison(job: Job) -> Comparison:
    return Comparison.objects.select_related("project", "eval_set", "captioner", "judge").get(
        id=job.params["comparison_id"], project=job.project
    )


def _shares(span: tuple[float, float], count: int) -> list[tuple[float, float]]:
    start, end = span
    width = (end - start) / max(count, 1)
    return [(start + index * width, start + (index + 1) * width) for index in range(count)]


def _await(ctx: JobContext, stages: list[tuple[Job, str]], span: tuple[float, float], step: str) -> None:
    """Go on once every stage of this step succeeded; otherwise sleep until they end, or end the
    evaluation the way its stage ended."""
    running = [label for stage, label in stages if not stage.is_finished]
    if running:
        ctx.wait_for_stages(span[0], f"{step}: {', '.join(running)}")
    for stage, label in stages:
        if stage.status == JobStatus.CANCELLED:
            raise JobCancelled()
        if stage.status != JobStatus.SUCCEEDED:
            raise RuntimeError(f"{label} (job #{stage.id}) ended {stage.status}: {stage.error or stage.message}")


def _detection_stages(job: Job, comparison: Comparison, pipelines: list[ComparisonPipeline]) -> list[tuple[Job, str]]:
    project = comparison.project
    wanted = []
    for pipeline in pipelines:
        if pipeline.detector_id is None:
            continue
        if comparison.test_labels:
            wanted.append((pipeline, "test_detection_run", [int(k) for k in comparison.test_labels], "gold test split"))
        wanted.append((pipeline, "eval_detection_run", comparison.eval_set.asset_ids, "eval set"))
    stages = []
    for (pipeline, field, asset_ids, what), share in zip(wanted, _shares(DETECTION_SPAN, len(wanted)), strict=True):
        run = getattr(pipeline, field)
        if run is None:
            run = detection_run_start(
                project=project, model_version=pipeline.detector, asset_ids=asset_ids, created_by=job.created_by,
                parent_job=job, parent_progress=share,
            )  # fmt: skip
            services.comparison_pipeline_stage_set(pipeline=pipeline, field=field, run=run)
        stages.append((run.job, f"{pipeline.detector.name} on the {what}"))
    return stages


def _caption_stages(job: Job, comparison: Comparison, pipelines: list[ComparisonPipeline]) -> list[tuple[Job, str]]:
    """One caption run per pipeline on the eval set and, where there is a gold test split, one on
    it too: its captions' characters are scored against the gold labels beside the detectors'."""
    test_ids = [int(k) for k in comparison.test_labels]
    wanted = []  # (pipeline, its caption-run field, its detection-run field, frames, what)
    for pipeline in pipelines:
        wanted.append((pipeline, "caption_run", "eval_detection_run_id", comparison.eval_set.asset_ids, "eval set"))
        if test_ids:
            wanted.append((pipeline, "test_caption_run", "test_detection_run_id", test_ids, "gold test split"))
    stages = []
    for (pipeline, field, detection_field, asset_ids, what), share in zip(
        wanted, _shares(CAPTION_SPAN, len(wanted)), strict=True
    ):
        run = getattr(pipeline, field)
        if run is None:
            detection_run_id = getattr(pipeline, detection_field)
            detection_run = (  # fresh from the database: its job has just finished
                DetectionRun.objects.select_related("job").get(id=detection_run_id) if detection_run_id else None
            )
            run = caption_run_start(
                project=comparison.project,
                model_version=comparison.captioner,
                pipeline="detection" if pipeline.detector_id else "no_detection",
                detection_run=detection_run,
                asset_ids=asset_ids,
                created_by=job.created_by,
                parent_job=job,
                parent_progress=share,
            )
            services.comparison_pipeline_stage_set(pipeline=pipeline, field=field, run=run)
        stages.append((run.job, f"captions of {pipeline.label} on the {what}"))
    return stages


SCORE_KINDS = {"evaluation_clipscore": "CLIPScore", "evaluation_judge": "the judge"}


def _score_stages(job: Job, comparison: Comparison) -> list[tuple[Job, str]]:
    kinds = ["evaluation_clipscore"] + (["evaluation_judge"] if comparison.judge_id else [])
    existing = {child.kind: child for child in Job.objects.filter(parent=job, kind__in=kinds)}
    stages = []
    for kind, share in zip(kinds, _shares(SCORE_SPAN, len(kinds)), strict=True):
        child = existing.get(kind) or job_create(
            kind=kind, project=comparison.project, created_by=job.created_by,
            params={"comparison_id": comparison.id}, parent=job, parent_progress=share,
        )  # fmt: skip
        stages.append((child, SCORE_KINDS[kind]))
    return stages


def _pipelines(comparison: Comparison) -> list[ComparisonPipeline]:
    return list(
        comparison.pipelines.select_related(
            "detector",
            "caption_run__job",
            "test_caption_run__job",
            "eval_detection_run__job",
            "test_detection_run__job",
        ).order_by("position")
    )


@job_kind(name="evaluate", label="Evaluate captioning pipelines", queue="cpu", clean_params=id_params("comparison_id"))
def evaluate(job: Job, ctx: JobContext) -> dict[str, Any]:
    comparison = _comparison(job)
    pipelines = _pipelines(comparison)
    _await(ctx, _detection_stages(job, comparison, pipelines), DETECTION_SPAN, "Detecting")
    _await(ctx, _caption_stages(job, comparison, pipelines), CAPTION_SPAN, "Captioning")
    score_stages = _score_stages(job, comparison)
    _await(ctx, score_stages, SCORE_SPAN, "Scoring")
    ctx.progress(SCORE_SPAN[1], "Model-free checks")
    token_unit = _health(comparison, pipelines)
    _characters_against_truth(comparison, pipelines)
    ctx.progress(0.99, "Building the report")
    results = {stage.kind: stage.result for stage, _ in score_stages}
    scoring = {
        "token_unit": token_unit,
        "clip_model": results["evaluation_clipscore"].get("clip_model"),
        "judge": results.get("evaluation_judge", {}).get("judge"),
    }
    services.comparison_report_save(comparison=comparison, report=report_builder.build(comparison, scoring))
    detecting = [p.eval_detection_run_id for p in pipelines if p.detector_id]
    return {
        "pipelines": len(pipelines),
        "frames": len(comparison.eval_set.asset_ids),
        "detections": Detection.objects.filter(run__in=detecting).count(),
        "stages": Job.objects.filter(parent=job).count(),
    }


def _tokenizer(captioner_spec):
    """The captioner's own tokenizer: caption length is counted in what the captioner reads."""
    from transformers import AutoTokenizer

    if captioner_spec.backend != "transformers":
        return str.split, "whitespace words (the captioner is served remotely)"
    tokenizer = AutoTokenizer.from_pretrained(captioner_spec.model)
    return (lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]), f"{captioner_spec.name} tokens"


def _health(comparison: Comparison, pipelines: list[ComparisonPipeline]) -> str:
    from workers.metrics.health import HealthConfig, caption_health

    tokenize, token_unit = _tokenizer(model_spec_for(comparison.captioner))
    config = HealthConfig(token_limit=comparison.params["token_limit"])
    for pipeline in pipelines:
        raw = dict(Caption.objects.filter(run=pipeline.caption_run).values_list("asset_id", "raw_text"))
        services.caption_scores_record_health(
            pipeline=pipeline,
            health={
                asset_id: caption_health(asset_id, raw.get(asset_id, ""), tokenize, config)
                for asset_id in comparison.eval_set.asset_ids
            },
        )
    return token_unit


def _characters_against_truth(comparison: Comparison, pipelines: list[ComparisonPipeline]) -> None:
    """Score each eval-set caption's characters against the demo world's truth where its frame has
    one: the eval set holds no gold frame, so this is the only reference there (a real project has
    none, and nothing is written)."""
    truth = ground_truth_names(project=comparison.project, asset_ids=comparison.eval_set.asset_ids)
    if not truth:
        return
    roster = selectors.character_roster(project=comparison.project)
    for pipeline in pipelines:
        captions = selectors.caption_fields_by_frame(caption_run_id=pipeline.caption_run_id)
        services.caption_scores_record_characters(
            pipeline=pipeline,
            rows=caption_character_scores(captions, truth, roster).rows,
            reference=CharacterReference.TRUTH,
        )


def _captions_by_frame(pipeline: ComparisonPipeline) -> dict[int, Caption]:
    return {c.asset_id: c for c in Caption.objects.filter(run=pipeline.caption_run)}


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@job_kind(
    name="evaluation_clipscore",
    label="CLIPScore of an evaluation's captions",
    queue=EMBED_QUEUE,
    clean_params=id_params("comparison_id"),
)
def evaluation_clipscore(job: Job, ctx: JobContext) -> dict[str, Any]:
    from workers.metrics.clipscore import clip_scores_for_images, load_clip_scorer
    from workers.vision.profiles import clip_spec
    from workers.vlm.parsing import caption_paragraph

    comparison = _comparison(job)
    project, ids = comparison.project, list(comparison.eval_set.asset_ids)
    clip = clip_spec(settings.MODEL_PROFILE, settings.MODELS_DIR, project.clip_model_name, project.clip_pretrained)
    ctx.progress(0.0, f"Loading CLIP {clip.key}")
    model, preprocess, tokenizer = load_clip_scorer(clip, _device())
    assets = {a.id: a for a in Asset.objects.filter(project=project, id__in=ids)}
    pipelines = _pipelines(comparison)
    with local_paths([assets[i].image for i in ids]) as frame_paths:
        paths = list(zip(ids, frame_paths, strict=True))
        for index, pipeline in enumerate(pipelines):
            captions = _captions_by_frame(pipeline)
            texts = {i: caption_paragraph(c.fields) if c.fields else c.raw_text for i, c in captions.items()}
            rows = clip_scores_for_images(model, preprocess, tokenizer, paths, texts).rows
            services.caption_scores_record_clip(pipeline=pipeline, rows=rows)
            ctx.progress((index + 1) / len(pipelines), f"CLIPScore of {pipeline.label}")
    return {"clip_model": clip.key}


@job_kind(
    name="evaluation_judge",
    label="Judge an evaluation's captions",
    queue=VLM_QUEUE,
    clean_params=id_params("comparison_id"),
)
def evaluation_judge(job: Job, ctx: JobContext) -> dict[str, Any]:
    from workers.metrics.judge import JudgeItem, judge_captions
    from workers.vlm.backends import load_backend

    comparison = _comparison(job)
    project, ids = comparison.project, list(comparison.eval_set.asset_ids)
    spec = model_spec_for(comparison.judge, max_new_tokens=comparison.params["judge_max_new_tokens"])
    ctx.progress(0.0, f"Loading the judge {comparison.judge.name}")
    judge = load_backend(spec)
    assets = {a.id: a for a in Asset.objects.filter(project=project, id__in=ids)}
    characters, references = roster_with_references(project)
    pipelines = _pipelines(comparison)
    with (
        local_paths([ref.image for ref in references]) as reference_paths,
        local_paths([assets[i].image for i in ids]) as frame_paths,
    ):
        cards = list(character_cards(characters, references, reference_paths).values())
        paths = dict(zip(ids, frame_paths, strict=True))
        for index, pipeline in enumerate(pipelines):
            captions = _captions_by_frame(pipeline)
            items = [JudgeItem(i, paths[i], captions[i].fields or captions[i].raw_text) for i in ids if i in captions]
            services.caption_scores_record_judge(pipeline=pipeline, rows=judge_captions(judge, items, cards).rows)
            ctx.progress((index + 1) / len(pipelines), f"Judged {pipeline.label}")
    return {"judge": judge.spec.version}
