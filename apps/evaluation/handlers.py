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
from apps.jobs.kinds import EMBED_QUEUE, VLM_QUEUE, id_params, job_kind, shard_params
from apps.jobs.models import Job, JobStatus
from apps.jobs.runner import JobCancelled, JobContext
from apps.jobs.services import job_create
from apps.jobs.shards import job_span, shards_or_whole
from apps.media.models import Asset
from apps.media.selectors import ground_truth_names
from apps.modelhub.specs import model_spec_for
from workers.metrics.caption_characters import caption_character_scores

# Each step's share of the evaluation's progress bar.
DETECTION_SPAN = (0.0, 0.35)
CAPTION_SPAN = (0.35, 0.7)
SCORE_SPAN = (0.7, 0.95)
CLIP_FRAMES_PER_CHUNK = 500  # eval-set frames read from storage and embedded at a time


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
    wanted, eval_ids = [], comparison.eval_set.frame_ids()
    for pipeline in pipelines:
        if pipeline.detector_id is None:
            continue
        if comparison.test_labels:
            wanted.append((pipeline, "test_detection_run", [int(k) for k in comparison.test_labels], "gold test split"))
        wanted.append((pipeline, "eval_detection_run", eval_ids, "eval set"))
    stages = []
    for (pipeline, field, asset_ids, what), share in zip(wanted, _shares(DETECTION_SPAN, len(wanted)), strict=True):
        run = getattr(pipeline, field)
        if run is None:
            run = detection_run_start(
                project=project, model_version=pipeline.detector, asset_ids=asset_ids, created_by=job.created_by,
                parent_job=job, parent_progress=share, frames_from=f"the {what} of comparison #{comparison.id}",
            )  # fmt: skip
            services.comparison_pipeline_stage_set(pipeline=pipeline, field=field, run=run)
        stages.append((run.job, f"{pipeline.detector.name} on the {what}"))
    return stages


def _caption_stages(job: Job, comparison: Comparison, pipelines: list[ComparisonPipeline]) -> list[tuple[Job, str]]:
    """One caption run per pipeline on the eval set and, where there is a gold test split, one on
    it too: its captions' characters are scored against the gold labels beside the detectors'."""
    test_ids = [int(k) for k in comparison.test_labels]
    wanted = []  # (pipeline, its caption-run field, its detection-run field, frames, what)
    eval_ids = comparison.eval_set.frame_ids()
    for pipeline in pipelines:
        wanted.append((pipeline, "caption_run", "eval_detection_run_id", eval_ids, "eval set"))
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
                frames_from=f"the {what} of comparison #{comparison.id}",
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


@job_kind(
    name="evaluate",
    label="Evaluate captioning pipelines",
    queue="cpu",
    clean_params=id_params("comparison_id"),
    produces=("the comparison report", "evaluation:detail", "comparison_id"),
)
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
        "frames": comparison.eval_set.frame_count,
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
    eval_ids = comparison.eval_set.frame_ids()
    for pipeline in pipelines:
        raw = dict(Caption.objects.filter(run=pipeline.caption_run).values_list("asset_id", "raw_text"))
        services.caption_scores_record_health(
            pipeline=pipeline,
            health={
                asset_id: caption_health(asset_id, raw.get(asset_id, ""), tokenize, config) for asset_id in eval_ids
            },
        )
    return token_unit


def _characters_against_truth(comparison: Comparison, pipelines: list[ComparisonPipeline]) -> None:
    """Score each eval-set caption's characters against the demo world's truth where its frame has
    one: the eval set holds no gold frame, so this is the only reference there (a real project has
    none, and nothing is written)."""
    truth = ground_truth_names(project=comparison.project, asset_ids=comparison.eval_set.frame_ids())
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


def _captions_by_frame(pipeline: ComparisonPipeline, asset_ids=None) -> dict[int, Caption]:
    captions = Caption.objects.filter(run=pipeline.caption_run)
    if asset_ids is not None:
        captions = captions.filter(asset_id__in=asset_ids)
    return {c.asset_id: c for c in captions}


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
    """CLIPScore of every pipeline's captions of the eval set, CLIP_FRAMES_PER_CHUNK frames at a
    time: each frame is read from storage and embedded once for all the pipelines."""
    from workers.metrics.clipscore import clip_scores_for_caption_sets, load_clip_scorer
    from workers.vision.profiles import clip_spec
    from workers.vlm.parsing import caption_paragraph

    comparison = _comparison(job)
    project, ids = comparison.project, comparison.eval_set.frame_ids()
    clip = clip_spec(settings.MODEL_PROFILE, settings.MODELS_DIR, project.clip_model_name, project.clip_pretrained)
    ctx.progress(0.0, f"Loading CLIP {clip.key}")
    model, preprocess, tokenizer = load_clip_scorer(clip, _device())
    pipelines = _pipelines(comparison)
    for start in range(0, len(ids), CLIP_FRAMES_PER_CHUNK):
        chunk = ids[start : start + CLIP_FRAMES_PER_CHUNK]
        assets = {a.id: a for a in Asset.objects.filter(project=project, id__in=chunk)}
        texts = {
            pipeline.id: {
                i: caption_paragraph(c.fields) if c.fields else c.raw_text
                for i, c in _captions_by_frame(pipeline, chunk).items()
            }
            for pipeline in pipelines
        }
        # Only this chunk's frames are on local disk at once (from S3, a copy each).
        with local_paths([assets[i].image for i in chunk]) as frame_paths:
            images = list(zip(chunk, frame_paths, strict=True))
            reports = clip_scores_for_caption_sets(model, preprocess, tokenizer, images, texts)
        for pipeline in pipelines:
            services.caption_scores_record_clip(pipeline=pipeline, rows=reports[pipeline.id].rows)
        done = start + len(chunk)
        ctx.progress(done / len(ids), f"CLIPScore of {done} of {len(ids)} frames")
    return {"clip_model": clip.key}


def _judge_span(comparison: Comparison, ctx: JobContext, span: tuple[int, int]) -> int:
    """Judge every pipeline's captions of the eval-set frames at positions [start, stop), loading
    the judge once. A caption judged already (a shard retried after its worker died) is not asked
    again; one whose answer was a backend error is. Returns how many were judged here."""
    from workers.metrics.judge import JudgeItem, judge_captions
    from workers.vlm.backends import load_backend

    project, ids = comparison.project, comparison.eval_set.frame_ids(*span)
    pipelines = _pipelines(comparison)
    todo = {pipeline.id: selectors.frames_to_judge(pipeline=pipeline, asset_ids=ids) for pipeline in pipelines}
    total = sum(len(frames) for frames in todo.values())
    ctx.log(f"{len(ids) * len(pipelines) - total} captions already judged, {total} to go")
    if not total:
        return 0
    spec = model_spec_for(comparison.judge, max_new_tokens=comparison.params["judge_max_new_tokens"])
    ctx.progress(0.0, f"Loading the judge {comparison.judge.name}")
    judge = load_backend(spec)
    assets = {a.id: a for a in Asset.objects.filter(project=project, id__in=ids)}
    characters, references = roster_with_references(project)
    judged = 0
    with (
        local_paths([ref.image for ref in references]) as reference_paths,
        local_paths([assets[i].image for i in ids]) as frame_paths,
    ):
        cards = list(character_cards(characters, references, reference_paths).values())
        paths = dict(zip(ids, frame_paths, strict=True))
        for pipeline in pipelines:
            captions = _captions_by_frame(pipeline, todo[pipeline.id])
            items = [JudgeItem(i, paths[i], captions[i].fields or captions[i].raw_text) for i in todo[pipeline.id]]
            rows = judge_captions(judge, items, cards, on_progress=_judge_progress(ctx, judged, total)).rows
            services.caption_scores_record_judge(pipeline=pipeline, rows=rows)
            judged += len(items)
    return judged


def _judge_progress(ctx: JobContext, judged_before: int, total: int):
    def report(done: int, _: int) -> None:
        ctx.progress((judged_before + done) / total, f"Judged {judged_before + done} of {total} captions")

    return report


@job_kind(
    name="evaluation_judge",
    label="Judge an evaluation's captions",
    queue=VLM_QUEUE,
    clean_params=id_params("comparison_id"),
)
def evaluation_judge(job: Job, ctx: JobContext) -> dict[str, Any]:
    """The judge over the eval set: by this job when it fits one shard, otherwise by shards of
    RUN_SHARD_FRAMES frames (every pipeline's captions of them) that any number of workers take."""
    comparison = _comparison(job)
    span = shards_or_whole(
        job,
        ctx,
        total=comparison.eval_set.frame_count,
        shard_kind="evaluation_judge_shard",
        params_for=lambda start, stop: {"comparison_id": comparison.id, "start": start, "stop": stop},
    )
    judged = _judge_span(comparison, ctx, span) if span is not None else None
    spec = model_spec_for(comparison.judge, max_new_tokens=comparison.params["judge_max_new_tokens"])
    return {"judge": spec.version, **({"judged": judged} if judged is not None else {"shards": job.children.count()})}


@job_kind(
    name="evaluation_judge_shard",
    label="Judge an evaluation's captions (a shard)",
    queue=VLM_QUEUE,
    clean_params=shard_params("comparison_id"),
    shard=True,
)
def evaluation_judge_shard(job: Job, ctx: JobContext) -> dict[str, Any]:
    return {"judged": _judge_span(_comparison(job), ctx, job_span(job)), "start": job.params["start"]}
