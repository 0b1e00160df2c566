"""Detection and captioning jobs: chunked, idempotent per asset, one model load per job.

A retried job (after a worker died) finds the assets already stored and skips them. The model
libraries are imported inside the handlers: the web process loads this module too.
"""

from typing import Any

from apps.captioning import services
from apps.captioning.models import CaptionPipeline, CaptionRun, DetectionRun
from apps.core.files import local_paths
from apps.jobs.kinds import VLM_QUEUE, id_params, job_kind
from apps.jobs.models import Job
from apps.jobs.runner import JobContext
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


def _finished(rows) -> set[int]:
    """Frames with a stored answer; backend errors are forgotten first, so a retry asks again."""
    services.answers_forget_backend_errors(rows=rows)
    return set(rows.values_list("asset_id", flat=True))


def _chunk_size(spec) -> int:
    # Several batches per call: the shared prefix is computed once per call (and per patch grid).
    return spec.batch_size * 8


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _run_over_frames(run, rows, ctx: JobContext, verb: str, prompt_for, record) -> tuple[Any, dict[str, Any]]:
    """The loop detection and captioning share: skip stored frames, load the model once, then per
    chunk build prompts (`prompt_for(asset_id, path, cards)`), generate, store (`record(asset_id,
    output, label)`) and report progress. Returns the model spec and the run's counts."""
    from workers.vlm.backends import load_backend

    done = _finished(rows)
    todo = [asset_id for asset_id in run.asset_ids if asset_id not in done]
    ctx.log(f"{len(done)} frames already {verb}, {len(todo)} to go")
    spec = model_spec_for(run.model_version)
    ctx.progress(len(done) / max(len(run.asset_ids), 1), f"Loading {spec.version}")
    backend = load_backend(spec)
    characters, references = roster_with_references(run.project)
    assets = {asset.id: asset for asset in Asset.objects.filter(id__in=todo)}
    with local_paths([ref.image for ref in references]) as reference_paths:
        cards = character_cards(characters, references, reference_paths)
        for chunk in _chunks(todo, _chunk_size(spec)):
            with local_paths([assets[asset_id].image for asset_id in chunk]) as frame_paths:
                prompts = [prompt_for(asset_id, path, cards) for asset_id, path in zip(chunk, frame_paths, strict=True)]
                services.run_prompt_example_set(run=run, text=prompts[0].text)
                outputs = backend.generate(prompts)
            for asset_id, output in zip(chunk, outputs, strict=True):
                record(asset_id, output, spec.version)
            finished = rows.count()
            ctx.progress(finished / len(run.asset_ids), f"{finished} of {len(run.asset_ids)} frames")
    failed = rows.filter(ok=False).count()
    total = rows.count()
    return spec, {"frames": total, "failed": failed, "failure_rate": round(failed / max(total, 1), 4)}


@job_kind(name="detect", label="Detect characters", queue=VLM_QUEUE, clean_params=id_params("detection_run_id"))
def detect(job: Job, ctx: JobContext) -> dict[str, Any]:
    from workers.vlm.parsing import parse_detection
    from workers.vlm.prompts import detection_prompt

    run = DetectionRun.objects.select_related("model_version", "project").get(
        id=job.params["detection_run_id"], project=job.project
    )
    roster = {c.name: list(c.aliases) for c in Character.objects.filter(project=run.project)}

    def record(asset_id, output, label):
        parsed = parse_detection(output.text, roster)
        services.detection_record(
            run=run, asset_id=asset_id, parsed=parsed, latency=output.seconds, error=output.error, label=label
        )

    spec, counts = _run_over_frames(
        run,
        run.detections,
        ctx,
        "detected",
        prompt_for=lambda asset_id, path, cards: detection_prompt(list(cards.values()), path),
        record=record,
    )
    repaired = sum(1 for d in run.detections.all() if set(d.flags) - {"unknown_names"})
    return {"detection_run_id": run.id, **counts, "repaired": repaired, "model": spec.version}


@job_kind(name="caption", label="Caption frames", queue=VLM_QUEUE, clean_params=id_params("caption_run_id"))
def caption(job: Job, ctx: JobContext) -> dict[str, Any]:
    from workers.vlm.parsing import parse_caption
    from workers.vlm.prompts import caption_prompt

    run = CaptionRun.objects.select_related("model_version", "project").get(
        id=job.params["caption_run_id"], project=job.project
    )
    with_detection = run.pipeline == CaptionPipeline.DETECTION
    detected: dict[int, list[str]] = {}
    if with_detection and run.detection_run_id:
        detected = {d.asset_id: d.names for d in run.detection_run.detections.filter(ok=True)}
    given: dict[int, list[str]] = {}

    def prompt_for(asset_id, path, cards):
        given[asset_id] = detected.get(asset_id, []) if with_detection else sorted(cards)
        return caption_prompt([cards[name] for name in given[asset_id] if name in cards], path, detected=with_detection)

    def record(asset_id, output, label):
        services.caption_record(
            run=run,
            asset_id=asset_id,
            parsed=parse_caption(output.text),
            characters_given=given[asset_id],
            extra_flags=["no_detection_for_frame"] if with_detection and asset_id not in detected else [],
            latency=output.seconds,
            error=output.error,
            label=label,
        )

    spec, counts = _run_over_frames(run, run.captions, ctx, "captioned", prompt_for=prompt_for, record=record)
    _count_tokens(run, spec)
    return {"caption_run_id": run.id, **counts, "model": spec.version}


def _count_tokens(run: CaptionRun, spec) -> None:
    """Caption lengths in the captioner's own tokens, for the health check (the web process never
    loads a tokenizer). A served captioner's tokenizer is not here: its captions keep no count."""
    if spec.backend != "transformers":
        return
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec.model)
    uncounted = run.captions.filter(tokens__isnull=True).only("id", "raw_text")
    counts = {
        caption.id: len(tokenizer(caption.raw_text, add_special_tokens=False)["input_ids"]) for caption in uncounted
    }
    services.caption_tokens_record(run=run, counts=counts)
