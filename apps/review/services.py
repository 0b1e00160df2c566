"""Writes for reviews: make one (from an evaluation or from two runs), vote, correct, flag, resolve."""

from collections.abc import Iterable, Mapping

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.captioning.models import Caption, CaptionRun
from apps.core.errors import ApplicationError
from apps.core.permissions import Action, can
from apps.evaluation.models import CaptionScore, Comparison
from apps.jobs.models import Job
from apps.jobs.services import job_create
from apps.labeling.models import LabelingProject
from apps.labeling.selectors import gold_label_map
from apps.media.selectors import ground_truth_names
from apps.modelhub.models import ModelVersion
from apps.review.models import (
    FIELDS,
    VOTE_FIELDS,
    CaptionFlag,
    CaptionFlagKind,
    CaptionRevision,
    PairwiseJudgement,
    Preference,
    Review,
    ReviewFrame,
    ReviewFrameCharacter,
    ReviewPlace,
    ReviewVote,
)
from apps.review.selectors import candidate_side, caption_fields_current, caption_names

FRAME_BATCH = 1000
REVISION_ATTEMPTS = 5
SIDES = ("A", "B")


def _reference_names(project, asset_ids: list[int]) -> tuple[dict[int, list[str]], str]:
    """Gold labels where the frames have them, else the demo world's truth, else nothing."""
    gold: dict[int, list[str]] = {}
    for labeling_project in LabelingProject.objects.filter(project=project, status="ready"):
        labels = gold_label_map(labeling_project)
        gold.update({asset_id: labels[asset_id] for asset_id in asset_ids if asset_id in labels})
    if gold:
        return gold, "gold label"
    truth = ground_truth_names(project=project, asset_ids=asset_ids)
    return (truth, "the demo world's truth") if truth else ({}, "")


def _judged(comparison: Comparison | None, run: CaptionRun) -> dict[int, CaptionScore]:
    if comparison is None:
        return {}
    scores = CaptionScore.objects.filter(pipeline__comparison=comparison, pipeline__caption_run=run)
    return {score.asset_id: score for score in scores.only("asset_id", "judge_overall", "judge_scores", "adheres")}


def _folded(names: Iterable[str]) -> set[str]:
    return {" ".join(name.split()).casefold()[:100] for name in names if name and name.strip()}


@transaction.atomic
def review_create(
    *,
    baseline: CaptionRun,
    candidate: CaptionRun,
    created_by: User | None,
    name: str = "",
    labels: tuple[str, str] | None = None,
    context: list[tuple[CaptionRun, str]] = (),
    comparison: Comparison | None = None,
) -> Review:
    """A review of the frames both runs captioned, in the baseline's order."""
    project = baseline.project
    if candidate.project_id != project.id or any(run.project_id != project.id for run, _ in context):
        raise ApplicationError("All the caption runs of a review must belong to one project.")
    if candidate.id == baseline.id:
        raise ApplicationError("Pick two different caption runs.")
    captions = {
        (row.run_id, row.asset_id): row
        for row in Caption.objects.filter(run__in=[baseline, candidate]).only(
            "id", "run_id", "asset_id", "fields", "ok", "characters_given"
        )
    }
    frames = [
        asset_id
        for asset_id in baseline.frame_ids()
        if (baseline.id, asset_id) in captions and (candidate.id, asset_id) in captions
    ]
    if not frames:
        raise ApplicationError("The two runs have no captioned frame in common.")
    labels = labels or (f"caption run #{baseline.id}", f"caption run #{candidate.id}")
    review = Review.objects.create(
        project=project,
        name=name or f"{labels[1]} vs {labels[0]}",
        comparison=comparison,
        baseline=baseline,
        candidate=candidate,
        baseline_label=labels[0],
        candidate_label=labels[1],
        context_runs=[[run.id, label] for run, label in context],
        frame_count=len(frames),
        created_by=created_by,
    )
    references, reference_kind = _reference_names(project, frames)
    judged = {run.id: _judged(comparison, run) for run in (baseline, candidate)}
    rows = []
    for position, asset_id in enumerate(frames):
        first, second = captions[(baseline.id, asset_id)], captions[(candidate.id, asset_id)]
        first_score, second_score = judged[baseline.id].get(asset_id), judged[candidate.id].get(asset_id)
        difference = None
        if first_score and second_score and None not in (first_score.judge_overall, second_score.judge_overall):
            difference = second_score.judge_overall - first_score.judge_overall
        if first_score and second_score:
            adherence_failed = not (first_score.adheres and second_score.adheres)
        else:
            adherence_failed = not (first.ok and second.ok)
        reference = references.get(asset_id)
        rows.append(
            ReviewFrame(
                review=review,
                position=position,
                asset_id=asset_id,
                baseline_caption=first,
                candidate_caption=second,
                judge_difference=difference,
                judge_baseline=first_score.judge_scores if first_score else {},
                judge_candidate=second_score.judge_scores if second_score else {},
                adherence_failed=adherence_failed,
                detectors_disagree=set(first.characters_given) != set(second.characters_given),
                reference_names=reference,
                reference_kind=reference_kind if reference is not None else "",
            )
        )
    ReviewFrame.objects.bulk_create(rows, batch_size=FRAME_BATCH)
    marks = []
    for frame in ReviewFrame.objects.filter(review=review).only("id", "asset_id"):
        first, second = captions[(baseline.id, frame.asset_id)], captions[(candidate.id, frame.asset_id)]
        names = _folded(
            [*caption_names(first.fields), *caption_names(second.fields), *first.characters_given]
            + [*second.characters_given, *(references.get(frame.asset_id) or [])]
        )
        marks.extend(ReviewFrameCharacter(review=review, frame=frame, name=name) for name in sorted(names))
    ReviewFrameCharacter.objects.bulk_create(marks, batch_size=FRAME_BATCH)
    return review


def review_create_from_comparison(*, comparison: Comparison, created_by: User | None) -> Review:
    """The evaluation's two detector pipelines' eval-set captions — the base detector's (baseline)
    and the newest one's, e.g. the fine-tuned (candidate) — with every other pipeline beside them."""
    pipelines = [p for p in comparison.pipelines.select_related("caption_run") if p.caption_run_id]
    with_detector = [p for p in pipelines if p.detector_id]
    if len(pipelines) < 2:
        raise ApplicationError(f"{comparison} has fewer than two captioned pipelines to review.")
    baseline, candidate = (with_detector[0], with_detector[-1]) if len(with_detector) >= 2 else pipelines[-2:]
    others = [p for p in pipelines if p not in (baseline, candidate)]
    return review_create(
        baseline=baseline.caption_run,
        candidate=candidate.caption_run,
        created_by=created_by,
        name=f"{comparison}: {candidate.label} vs {baseline.label}",
        labels=(baseline.label, candidate.label),
        context=[(p.caption_run, p.label) for p in others],
        comparison=comparison,
    )


def _unblinded(choices: Mapping[str, str], candidate_as: str) -> dict[str, str]:
    """A / B / same per field, as the reviewer saw them → candidate / baseline / same."""
    unknown = sorted(set(choices) - set(VOTE_FIELDS))
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(unknown)}.", field="choices")
    stored = {}
    for field, choice in choices.items():
        if choice in ("", None):
            continue
        if choice == "same":
            stored[field] = Preference.SAME.value
        elif choice in SIDES:
            stored[field] = Preference.CANDIDATE.value if choice == candidate_as else Preference.BASELINE.value
        else:
            raise ApplicationError(f"{field}: choose A, B or same, not {choice!r}.", field="choices")
    if "overall" not in stored:
        raise ApplicationError("Say which caption is better overall (A, B or the same).", field="choices")
    return stored


def _may_review(user: User) -> None:
    if not can(user, Action.REVIEW_CAPTIONS):
        raise ApplicationError("Only reviewers and leads vote on or correct captions.")


def vote_record(
    *,
    frame: ReviewFrame,
    reviewer: User,
    choices: Mapping[str, str],
    comment: str = "",
    flags: Iterable[tuple[str, str]] = (),
) -> ReviewVote:
    """The reviewer's verdict on the frame (a second vote replaces their first), and any flags
    they raised on caption A or B. Choices are per field, as shown: A, B or same."""
    _may_review(reviewer)
    review = frame.review
    candidate_as = candidate_side(review.id, reviewer.id, frame.asset_id)
    stored = _unblinded(choices, candidate_as)
    raised = []
    for side, kind in flags:
        if side not in SIDES or kind not in CaptionFlagKind.values or kind == CaptionFlagKind.CORRECTED:
            raise ApplicationError(f"Unknown flag {side}:{kind}.", field="flags")
        raised.append((frame.candidate_caption_id if side == candidate_as else frame.baseline_caption_id, kind))
    values = {"review": review, "candidate_shown_as": candidate_as, "choices": stored, "comment": comment[:5000]}
    with transaction.atomic():
        try:
            with transaction.atomic():  # two tabs of one reviewer: the second updates the first's row
                vote, _ = ReviewVote.objects.update_or_create(frame=frame, reviewer=reviewer, defaults=values)
        except IntegrityError:
            vote, _ = ReviewVote.objects.update_or_create(frame=frame, reviewer=reviewer, defaults=values)
        for caption_id, kind in raised:
            _flag_raise(caption_id=caption_id, review=review, kind=kind, user=reviewer, comment=comment[:1000])
        place_set(review=review, reviewer=reviewer, position=frame.position)
    return vote


def _flag_raise(*, caption_id: int, review: Review, kind: str, user: User, comment: str = "") -> CaptionFlag:
    open_flags = CaptionFlag.objects.filter(caption_id=caption_id, kind=kind, raised_by=user, resolved_at__isnull=True)
    flag = open_flags.first()
    if flag is None:
        try:
            with transaction.atomic():
                flag = CaptionFlag.objects.create(
                    caption_id=caption_id, review=review, kind=kind, raised_by=user, comment=comment
                )
        except IntegrityError:  # raised at the same moment in another tab
            flag = open_flags.get()
    return flag


@transaction.atomic
def caption_correct(*, caption: Caption, fields: Mapping, author: User, review: Review | None = None, note: str = ""):
    """A new revision of the caption's fields (validated against the caption schema). A reviewer's
    correction raises a flag for a lead to look at; a lead's own needs no second look."""
    from workers.vlm.parsing import StructuredCaption

    _may_review(author)
    Caption.objects.select_for_update().filter(id=caption.id).first()  # one numbering at a time
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ApplicationError(f"Unknown caption fields: {', '.join(unknown)}.", field="fields")
    current = caption_fields_current(caption)
    merged = {**(current or {}), **fields}
    try:
        cleaned = StructuredCaption.model_validate(merged).model_dump()
    except ValueError as exc:
        raise ApplicationError(f"The correction does not fit the caption schema: {exc}", field="fields") from None
    if cleaned == current:
        raise ApplicationError("The correction changes nothing.", field="fields")
    for attempt in range(REVISION_ATTEMPTS):
        last = caption.revisions.order_by("-number").first()
        try:
            with transaction.atomic():  # where the row lock above is a no-op (SQLite): the unique number decides
                revision = CaptionRevision.objects.create(
                    caption=caption,
                    number=(last.number + 1) if last else 1,
                    fields=cleaned,
                    author=author,
                    note=note[:500],
                )
            break
        except IntegrityError:
            if attempt == REVISION_ATTEMPTS - 1:
                raise ApplicationError("Others are correcting this caption right now: try again.") from None
    flag = _flag_raise(caption_id=caption.id, review=review, kind=CaptionFlagKind.CORRECTED, user=author, comment=note)
    changed = sorted(name for name in FIELDS if cleaned.get(name) != (current or {}).get(name))
    audit_record(
        action=AuditAction.CAPTION_CORRECTED, actor=author, project=caption.run.project,
        target=f"caption #{caption.id}", summary=f"revision {revision.number}: {', '.join(changed)}",
        detail={"revision": revision.number, "review_id": review.id if review else None, "fields": changed},
    )  # fmt: skip
    if can(author, Action.MANAGE_REVIEWS):
        _resolve([flag], author, "a lead's own correction")
    return revision


def _resolve(flags: Iterable[CaptionFlag], lead: User, resolution: str) -> int:
    ids = [flag.id for flag in flags]
    return CaptionFlag.objects.filter(id__in=ids, resolved_at__isnull=True).update(
        resolved_by=lead, resolved_at=timezone.now(), resolution=resolution[:1000]
    )


@transaction.atomic
def caption_flags_resolve(*, caption: Caption, lead: User, resolution: str = "") -> int:
    """Close every open flag on the caption (after correcting it, or deciding it is right)."""
    if not can(lead, Action.MANAGE_REVIEWS):
        raise ApplicationError("Only a lead resolves flags.")
    return _resolve(caption.review_flags.filter(resolved_at__isnull=True), lead, resolution or "resolved")


def place_set(*, review: Review, reviewer: User, position: int) -> None:
    """Remember where the reviewer is (their queue opens there next time)."""
    updated = ReviewPlace.objects.filter(review=review, reviewer=reviewer).update(
        position=position, updated_at=timezone.now()
    )
    if not updated:
        try:
            with transaction.atomic():
                ReviewPlace.objects.create(review=review, reviewer=reviewer, position=position)
        except IntegrityError:
            ReviewPlace.objects.filter(review=review, reviewer=reviewer).update(position=position)


def pairwise_judge_start(*, review: Review, judge: ModelVersion, created_by: User | None, enqueue: bool = True) -> Job:
    """Ask a judge model about every frame's two captions, in both orders (a job on the VLM queue)."""
    if judge.project_id != review.project_id:
        raise ApplicationError("The judge belongs to another project.")
    return job_create(
        kind="review_pairwise_judge",
        project=review.project,
        created_by=created_by,
        params={"review_id": review.id, "judge_id": judge.id},
        enqueue=enqueue,
    )


def pairwise_judgements_record(*, judge: ModelVersion, job: Job | None, rows) -> None:
    """Store each frame's verdict once: a retried chunk finds it there."""
    for row in rows:
        PairwiseJudgement.objects.get_or_create(
            frame_id=row.key,
            judge=judge,
            defaults={
                "job": job,
                "status": row.status,
                "preferences": row.preferences,
                "forward": row.forward,
                "backward": row.backward,
                "raw_forward": row.raw[0],
                "raw_backward": row.raw[1],
                "error": row.error,
            },
        )
