"""Detection and captioning jobs: chunked, idempotent per asset, one model load per job.

A run over more than RUN_SHARD_FRAMES frames is split into shards (a range of its frames' positions
each, a child job each): any number of GPU workers take them at once, each loads its model once,
and the run's job sums them up when the last has ended. A retried job or shard (after a worker
died) finds the assets already stored and skips them. The model
libraries are imported inside the handlers: the web process loads this module too.
"""

from typing import Any

from apps.captioning import services
from apps.captioning.models import CaptionPipeline, CaptionRun, DetectionRun
from apps.core.files import local_paths
from apps.jobs.kinds import VLM_QUEUE, id_params, job_kind, shard_params
from apps.jobs.models import Job
from apps.jobs.runner import JobContext
from apps.jobs.shards import job_span, shards_or_whole
from apps.media.models import Asset
from apps.modelhub.specs import model_spec_for
from apps.projects.models import Character, ReferenceImage


def roster_with_references(project):
    """(cards, alias roster) with local reference paths; the caller keeps the context open."""
    characters = list(Character.objects.filter(project=project).prefetch_related("references").order_by("name"))
    references = [ref for character in characters for ref in character.references.all()]
    return characters, references


def character_cards(characters: list[Character], references: list[ReferenceImage], paths) -> dict:
    from workers.vlm.prompts import CharacterCard

    path_of = {ref.id: path for ref, path in zip(references, paths, strict=True)}
    return {
        character.name: CharacterCard(
            name=character.name,
            description=character.description,
            reference_paths=tuple(path_of[ref.id] for ref in character.references.all()),
            aliases=tuple(character.aliases),
        )
        for character in characters
    }


def _finished(run, rows) -> set[int]:
    """Frames with a stored answer; backend errors are forgotten first, so a retry asks again."""
    services.answers_forget_backend_errors(run=run, rows=rows)
    return set(rows.values_list("asset_id", flat=True))


def _chunk_size(spec) -> int:
    # Several batches per call: the shared prefix is computed once per call (and per patch grid);
    # a served model gets enough at once to keep `concurrency` requests in flight.
    return max(spec.batch_size * 8, spec.concurrency * 2 if spec.backend == "openai" else 0)


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _frames_between(run, start: int, stop: int):
    """The asset ids of the run's frames at positions [start, stop), as a subquery (no list of
    ids in the SQL, whatever the shard's size)."""
    return run.frames.filter(position__gte=start, position__lt=stop).values("asset_id")


def _counts(rows) -> dict[str, Any]:
    failed, total = rows.filter(ok=False).count(), rows.count()
    return {"frames": total, "failed": failed, "failure_rate": round(failed / max(total, 1), 4)}


def _run_over_frames(
    run, rows, ctx: JobContext, verb: str, prompt_for, answer, span: tuple[int, int]
) -> tuple[Any, Any]:
    """The loop detection and captioning share, over the run's frames at positions [start, stop)
    (the whole run, or one shard): skip stored frames, load the model once, then per chunk build
    prompts (`prompt_for(asset_id, path, cards)`), generate, store the answers (`answer(asset_id,
    output, label)` builds each) in one write, and report progress. Returns the model spec and
    the answers in the span."""
    from workers.vlm.backends import load_backend

    frames = run.frame_ids(*span)
    rows = rows.filter(asset_id__in=_frames_between(run, *span))
    done = _finished(run, rows)
    todo = [asset_id for asset_id in frames if asset_id not in done]
    ctx.log(f"{len(done)} frames already {verb}, {len(todo)} to go")
    spec = model_spec_for(run.model_version)
    ctx.progress(len(done) / max(len(frames), 1), f"Loading {spec.version}")
    backend = load_backend(spec)
    characters, references = roster_with_references(run.project)
    assets = {asset.id: asset for asset in Asset.objects.filter(id__in=_frames_between(run, *span))}
    finished = len(done)
    with local_paths([ref.image for ref in references]) as reference_paths:
        cards = character_cards(characters, references, reference_paths)
        for chunk in _chunks(todo, _chunk_size(spec)):
            # Streamed a chunk at a time: from S3 only this chunk's frames are on local disk.
            with local_paths([assets[asset_id].image for asset_id in chunk]) as frame_paths:
                prompts = [prompt_for(asset_id, path, cards) for asset_id, path in zip(chunk, frame_paths, strict=True)]
                services.run_prompt_example_set(run=run, text=prompts[0].text)
                outputs = backend.generate(prompts)
            answers = [answer(asset_id, output, spec.version) for asset_id, output in zip(chunk, outputs, strict=True)]
            services.answers_store(answers=answers)
            finished += len(chunk)
            ctx.progress(finished / len(frames), f"{finished} of {len(frames)} frames")
    return spec, rows


def _repaired(detections) -> int:
    """Answers that needed a repair to parse (unknown names alone are no repair)."""
    flags = detections.values_list("flags", flat=True).iterator(chunk_size=5000)
    return sum(1 for row_flags in flags if set(row_flags) - {"unknown_names"})


def _detect_run(job: Job):
    return DetectionRun.objects.select_related("model_version", "project").get(
        id=job.params["detection_run_id"], project=job.project
    )


def _detect_span(run: DetectionRun, ctx: JobContext, span: tuple[int, int]) -> dict[str, Any]:
    from workers.vlm.parsing import parse_detection
    from workers.vlm.prompts import detection_prompt

    roster = {c.name: list(c.aliases) for c in Character.objects.filter(project=run.project)}

    def answer(asset_id, output, label):
        parsed = parse_detection(output.text, roster)
        return services.detection_answer(
            run=run, asset_id=asset_id, parsed=parsed, latency=output.seconds, error=output.error, label=label
        )

    spec, rows = _run_over_frames(
        run,
        run.detections,
        ctx,
        "detected",
        prompt_for=lambda asset_id, path, cards: detection_prompt(list(cards.values()), path),
        answer=answer,
        span=span,
    )
    return {"detection_run_id": run.id, **_counts(rows), "repaired": _repaired(rows), "model": spec.version}


def _detection_totals(run: DetectionRun) -> dict[str, Any]:
    totals = {**_counts(run.detections), "repaired": _repaired(run.detections)}
    return {"detection_run_id": run.id, **totals, "model": model_spec_for(run.model_version).version}


def _caption_run(job: Job):
    return CaptionRun.objects.select_related("model_version", "project").get(
        id=job.params["caption_run_id"], project=job.project
    )


def _caption_span(run: CaptionRun, ctx: JobContext, span: tuple[int, int]) -> dict[str, Any]:
    from workers.vlm.parsing import parse_caption
    from workers.vlm.prompts import caption_prompt

    with_detection = run.pipeline == CaptionPipeline.DETECTION
    detected: dict[int, list[str]] = {}
    if with_detection and run.detection_run_id:
        detections = run.detection_run.detections.filter(ok=True, asset_id__in=_frames_between(run, *span))
        detected = dict(detections.values_list("asset_id", "names"))
    given: dict[int, list[str]] = {}

    def prompt_for(asset_id, path, cards):
        given[asset_id] = detected.get(asset_id, []) if with_detection else sorted(cards)
        return caption_prompt([cards[name] for name in given[asset_id] if name in cards], path, detected=with_detection)

    def answer(asset_id, output, label):
        return services.caption_answer(
            run=run,
            asset_id=asset_id,
            parsed=parse_caption(output.text),
            characters_given=given[asset_id],
            extra_flags=["no_detection_for_frame"] if with_detection and asset_id not in detected else [],
            latency=output.seconds,
            error=output.error,
            label=label,
        )

    spec, rows = _run_over_frames(run, run.captions, ctx, "captioned", prompt_for=prompt_for, answer=answer, span=span)
    _count_tokens(run, spec, rows)
    return {"caption_run_id": run.id, **_counts(rows), "model": spec.version}


def _caption_totals(run: CaptionRun) -> dict[str, Any]:
    return {"caption_run_id": run.id, **_counts(run.captions), "model": model_spec_for(run.model_version).version}


def _run_kinds(*, name: str, label: str, run_param: str, load_run, span_work, totals, page, summarise=lambda run: None):
    """A kind of run's two job kinds: `name`, the whole run (done by its own job when it fits one
    shard, otherwise split into shards and summed up by `totals(run)` once they have ended), and
    `name_shard`, one range of its frames (`span_work(run, ctx, (start, stop))`). When the run
    is done its counts are recounted and `summarise(run)` keeps what its pages show."""

    @job_kind(name=name, label=label, queue=VLM_QUEUE, clean_params=id_params(run_param), produces=page)
    def whole(job: Job, ctx: JobContext) -> dict[str, Any]:
        run = load_run(job)
        span = shards_or_whole(
            job,
            ctx,
            total=run.frame_count,
            shard_kind=f"{name}_shard",
            params_for=lambda start, stop: {run_param: run.id, "start": start, "stop": stop},
        )
        result = span_work(run, ctx, span) if span is not None else {**totals(run), "shards": job.children.count()}
        services.run_answers_recount(run=run)
        summarise(run)
        return result

    @job_kind(
        name=f"{name}_shard",
        label=f"{label} (a shard)",
        queue=VLM_QUEUE,
        clean_params=shard_params(run_param),
        shard=True,
    )
    def shard(job: Job, ctx: JobContext) -> dict[str, Any]:
        return {**span_work(load_run(job), ctx, job_span(job)), "start": job.params["start"]}

    return whole, shard


detect, detect_shard = _run_kinds(
    name="detect",
    label="Detect characters",
    run_param="detection_run_id",
    load_run=_detect_run,
    span_work=_detect_span,
    totals=_detection_totals,
    page=("the detection run", "captioning:detection_run", "detection_run_id"),
)
caption, caption_shard = _run_kinds(
    name="caption",
    label="Caption frames",
    run_param="caption_run_id",
    load_run=_caption_run,
    span_work=_caption_span,
    totals=_caption_totals,
    page=("the caption run", "captioning:caption_run", "caption_run_id"),
    summarise=lambda run: services.caption_run_health_refresh(run=run, force=True),
)


def _count_tokens(run: CaptionRun, spec, captions) -> None:
    """Caption lengths in the captioner's own tokens, for the health check (the web process never
    loads a tokenizer). A served captioner's tokenizer is not here: its captions keep no count."""
    if spec.backend != "transformers":
        return
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec.model)
    uncounted = captions.filter(tokens__isnull=True).only("id", "raw_text")
    counts = {
        caption.id: len(tokenizer(caption.raw_text, add_special_tokens=False)["input_ids"]) for caption in uncounted
    }
    services.caption_tokens_record(run=run, counts=counts)
