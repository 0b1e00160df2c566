"""The pairwise judge job: a judge model compares each frame's two captions, in both orders.

torch and the model load inside the handler: the web process imports this module (to register
the kind) and must not import them.
"""

from typing import Any

from apps.captioning.handlers import character_cards, roster_with_references
from apps.core.files import local_paths
from apps.jobs.kinds import VLM_QUEUE, id_params, job_kind
from apps.jobs.models import Job
from apps.jobs.runner import JobContext
from apps.modelhub.models import ModelVersion
from apps.modelhub.specs import model_spec_for
from apps.review import services
from apps.review.models import PairwiseJudgement, Review

CHUNK = 16


@job_kind(
    name="review_pairwise_judge",
    label="Judge a review's pairs",
    queue=VLM_QUEUE,
    clean_params=id_params("review_id", "judge_id"),
    produces=("the review", "review:compare", "review_id"),
)
def review_pairwise_judge(job: Job, ctx: JobContext) -> dict[str, Any]:
    from workers.metrics.pairwise import PairItem, judge_pairs
    from workers.vlm.backends import load_backend

    review = Review.objects.get(id=job.params["review_id"], project=job.project)
    judge = ModelVersion.objects.get(id=job.params["judge_id"], project=job.project)
    done = set(PairwiseJudgement.objects.filter(frame__review=review, judge=judge).values_list("frame_id", flat=True))
    frames = list(review.frames.exclude(id__in=done).select_related("asset", "baseline_caption", "candidate_caption"))
    ctx.log(f"{len(done)} frames judged before, {len(frames)} to go")
    ctx.progress(0.0, f"Loading the judge {judge.name}")
    backend = load_backend(model_spec_for(judge, max_new_tokens=max(judge.settings.get("max_new_tokens", 0), 96)))
    characters, references = roster_with_references(review.project)
    with local_paths([ref.image for ref in references]) as reference_paths:
        cards = list(character_cards(characters, references, reference_paths).values())
        for start in range(0, len(frames), CHUNK):
            chunk = frames[start : start + CHUNK]
            with local_paths([frame.asset.image for frame in chunk]) as paths:
                items = [
                    PairItem(
                        frame.id,
                        path,
                        frame.baseline_caption.fields or frame.baseline_caption.raw_text,
                        frame.candidate_caption.fields or frame.candidate_caption.raw_text,
                    )
                    for frame, path in zip(chunk, paths, strict=True)
                ]
                rows = judge_pairs(backend, items, cards)
            services.pairwise_judgements_record(judge=judge, job=job, rows=rows)
            ctx.progress((start + len(chunk)) / len(frames), f"{start + len(chunk)} of {len(frames)} frames")
    counts = PairwiseJudgement.objects.filter(frame__review=review, judge=judge).values_list("status", flat=True)
    statuses = list(counts)
    return {
        "review_id": review.id,
        "judge": judge.name,
        "frames": len(statuses),
        "ok": statuses.count("ok"),
        "unparsable": statuses.count("unparsable"),
        "error": statuses.count("error"),
    }
