"""A project whose captions an export has to choose between: two caption runs over the same frames
(from the review world), raw answers that fit the schema or needed repair, an evaluation's judge
scores, a reviewer's vote, correction and flag."""

import json

from apps.captioning.models import Caption
from apps.evaluation.models import CaptionScore, Comparison, ComparisonPipeline, EvalSet
from apps.evaluation.services import eval_set_frames_set
from apps.jobs.runner import job_execute
from apps.modelhub.models import ModelVersion
from apps.review.services import caption_correct, vote_record
from tests.apps.review.world import review_world
from workers.metrics.judge import JUDGE_FIELDS


def export_world(project, reviewer, frames: int = 6):
    """(review, baseline run, candidate run). Judge overall: the candidate scores 6 + index % 3
    on frame `index`, the baseline 5 (9 on frame 5); the candidate's answer on frame 1 needed repair
    (a code fence); a reviewer corrected the candidate's caption of frame 2, preferred the
    candidate on frame 0 and flagged the candidate's caption of frame 4 as a wrong name."""
    review, baseline, candidate = review_world(project, frames=frames)
    for caption in Caption.objects.filter(run__in=[baseline, candidate]).exclude(fields=None):
        answer = json.dumps(caption.fields)
        if caption.run_id == candidate.id and caption.asset_id == review.frames.get(position=1).asset_id:
            answer = f"```json\n{answer}\n```"
        caption.raw_text = answer
        caption.save(update_fields=["raw_text"])
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    eval_set = EvalSet.objects.create(project=project, name="eval", requested=frames)
    eval_set_frames_set(eval_set=eval_set, asset_ids=baseline.frame_ids())
    comparison = Comparison.objects.create(
        project=project, eval_set=eval_set, captioner=captioner, judge=captioner, profile="tiny"
    )
    for position, (run, label) in enumerate(((baseline, "base"), (candidate, "fine-tuned"))):
        pipeline = ComparisonPipeline.objects.create(
            comparison=comparison, position=position, label=label, caption_run=run
        )
        for index, asset_id in enumerate(run.frame_ids()):
            overall = (9.0 if index == 5 else 5.0) if run == baseline else 6.0 + index % 3
            CaptionScore.objects.create(
                pipeline=pipeline, asset_id=asset_id, judge_status="ok", judge_overall=overall,
                judge_scores={field: overall for field in JUDGE_FIELDS},
            )  # fmt: skip
    frame0, frame2, frame4 = (review.frames.get(position=p) for p in (0, 2, 4))
    vote_record(frame=frame0, reviewer=reviewer, choices=_choices_for(review, reviewer, frame0, "candidate"))
    caption_correct(
        caption=frame2.candidate_caption,
        fields={"scene": "Ellie and Victor fly a kite, corrected.", "salient_objects": "a blue kite"},
        author=reviewer,
        review=review,
    )
    shown_as = _candidate_side(review, reviewer, frame4)
    vote_record(
        frame=frame4,
        reviewer=reviewer,
        choices=_choices_for(review, reviewer, frame4, "same"),
        flags=[(shown_as, "wrong_name")],
    )
    return review, baseline, candidate


def _candidate_side(review, reviewer, frame) -> str:
    from apps.review.selectors import candidate_side

    return candidate_side(review.id, reviewer.id, frame.asset_id)


def _choices_for(review, reviewer, frame, prefer: str) -> dict[str, str]:
    """Choices as shown (A/B/same) that mean `prefer` (candidate | same) once unblinded."""
    if prefer == "same":
        shown = "same"
    else:
        shown = _candidate_side(review, reviewer, frame)
    return {field: shown for field in ("scene", "background", "characters", "salient_objects", "overall")}


def run_export(export):
    job_execute(export.job_id)
    export.refresh_from_db()
    export.job.refresh_from_db()
    assert export.job.status == "succeeded", export.job.error
    return export
