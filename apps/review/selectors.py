"""Reads for reviews: one frame's page in a constant number of queries, the filtered queue, the
results (win rates, agreement between reviewers and with the judge) and the lead's flag list."""

import difflib
import hashlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import Count, Max, Q, QuerySet
from django.http import Http404

from apps.captioning.models import Caption
from apps.projects.models import Project
from apps.review.models import (
    FIELDS,
    VOTE_FIELDS,
    CaptionFlag,
    CaptionRevision,
    PairwiseJudgement,
    Preference,
    Review,
    ReviewFrame,
    ReviewPlace,
    ReviewVote,
)

FIELD_LABELS = {
    "scene": "Scene",
    "background": "Background",
    "characters": "Characters",
    "salient_objects": "Salient objects",
    "overall": "Overall",
}
PREFERENCE_VALUE = {Preference.CANDIDATE.value: 1, Preference.SAME.value: 0, Preference.BASELINE.value: -1}


def candidate_side(review_id: int, reviewer_id: int, asset_id: int) -> str:
    """Which side, A or B, the candidate is shown on: drawn per frame and per reviewer, the same
    every time that reviewer opens that frame."""
    digest = hashlib.sha256(f"review {review_id} reviewer {reviewer_id} frame {asset_id}".encode()).digest()
    return "A" if digest[0] % 2 == 0 else "B"


def caption_names(fields: Mapping | None) -> list[str]:
    mentions = (fields or {}).get("characters") or []
    return [str(m.get("name", "")).strip() for m in mentions if isinstance(m, dict) and m.get("name")]


def caption_fields_current(caption: Caption) -> dict | None:
    """The newest person's revision of the caption's fields, else the model's: what exports use."""
    revision = caption.revisions.order_by("-number").first()
    return dict(revision.fields) if revision else (dict(caption.fields) if caption.fields else None)


def review_list(*, project: Project) -> QuerySet[Review]:
    return Review.objects.filter(project=project).annotate(vote_count=Count("votes")).order_by("-id")


def review_get(*, project: Project, review_id: int) -> Review:
    review = Review.objects.filter(project=project, id=review_id).select_related("project").first()
    if review is None:
        raise Http404("No such review.")
    return review


@dataclass(frozen=True)
class FrameFilters:
    judge_difference: float | None = None  # |candidate − baseline| judge overall at least this
    character: str = ""
    adherence_failed: bool = False
    detectors_disagree: bool = False
    unvoted: bool = False  # only frames this reviewer has not voted on

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "FrameFilters":
        try:
            difference = float(query["judge"]) if query.get("judge") not in (None, "") else None
        except ValueError:
            difference = None
        return cls(
            judge_difference=difference,
            character=(query.get("character") or "").strip()[:100],
            adherence_failed=query.get("adherence") == "1",
            detectors_disagree=query.get("disagree") == "1",
            unvoted=query.get("unvoted") == "1",
        )

    def as_query(self) -> dict[str, str]:
        query = {}
        if self.judge_difference is not None:
            query["judge"] = f"{self.judge_difference:g}"
        if self.character:
            query["character"] = self.character
        for key, on in (("adherence", self.adherence_failed), ("disagree", self.detectors_disagree)):
            if on:
                query[key] = "1"
        if self.unvoted:
            query["unvoted"] = "1"
        return query


def review_frames(*, review: Review, filters: FrameFilters, reviewer: User | None = None) -> QuerySet[ReviewFrame]:
    """The review's frames that pass the filters, in order: indexed queries on precomputed columns."""
    frames = ReviewFrame.objects.filter(review=review)
    if filters.judge_difference is not None:
        frames = frames.filter(
            Q(judge_difference__gte=filters.judge_difference) | Q(judge_difference__lte=-filters.judge_difference)
        )
    if filters.character:
        frames = frames.filter(character_marks__name=" ".join(filters.character.split()).casefold())
    if filters.adherence_failed:
        frames = frames.filter(adherence_failed=True)
    if filters.detectors_disagree:
        frames = frames.filter(detectors_disagree=True)
    if filters.unvoted and reviewer is not None:
        frames = frames.exclude(votes__reviewer=reviewer)
    return frames.order_by("position")


def reviewer_place(*, review: Review, reviewer: User) -> int:
    place = ReviewPlace.objects.filter(review=review, reviewer=reviewer).values_list("position", flat=True).first()
    return place or 0


def word_diff(first: str, second: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Each text as (words, changed) runs: the words the other text does not have are marked."""
    a, b = first.split(), second.split()
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if i2 > i1:
            left.append((" ".join(a[i1:i2]), op != "equal"))
        if j2 > j1:
            right.append((" ".join(b[j1:j2]), op != "equal"))
    return left, right


def field_text(fields: Mapping | None, field: str) -> str:
    if not fields:
        return ""
    if field == "characters":
        parts = []
        for mention in fields.get("characters") or []:
            if isinstance(mention, dict):
                name, description = str(mention.get("name", "")), str(mention.get("description", ""))
                parts.append(f"{name}: {description}" if description else name)
        return "; ".join(parts)
    return str(fields.get(field) or "")


def _current(caption: Caption, revisions: dict[int, CaptionRevision]) -> dict | None:
    revision = revisions.get(caption.id)
    return dict(revision.fields) if revision else caption.fields


def frame_page(
    *, review: Review, reviewer: User, position: int | None, filters: FrameFilters, blind: bool
) -> dict | None:
    """Everything the comparison page shows for one frame, in a constant number of queries
    whatever the size of the review: the frame at (or after) `position` in the filtered queue."""
    frames = review_frames(review=review, filters=filters, reviewer=reviewer)
    if position is None:
        position = reviewer_place(review=review, reviewer=reviewer)
    frame = frames.filter(position__gte=position).select_related("asset").first()
    if frame is None:
        frame = frames.filter(position__lt=position).select_related("asset").last()
    if frame is None:
        return None
    previous = frames.filter(position__lt=frame.position).order_by("-position").values_list("position", flat=True)
    following = frames.filter(position__gt=frame.position).values_list("position", flat=True)
    context_runs = {int(run_id): label for run_id, label in review.context_runs}
    captions = list(
        Caption.objects.filter(
            Q(id__in=[frame.baseline_caption_id, frame.candidate_caption_id])
            | Q(run_id__in=list(context_runs) if not blind else [], asset_id=frame.asset_id)
        )
    )
    ids = [caption.id for caption in captions]
    revisions: dict[int, CaptionRevision] = {}
    for revision in CaptionRevision.objects.filter(caption_id__in=ids).select_related("author").order_by("number"):
        revisions[revision.caption_id] = revision  # the newest wins
    open_flags: dict[int, list[CaptionFlag]] = defaultdict(list)
    for flag in CaptionFlag.objects.filter(caption_id__in=ids, resolved_at__isnull=True).select_related("raised_by"):
        open_flags[flag.caption_id].append(flag)
    by_id = {caption.id: caption for caption in captions}
    candidate_as = candidate_side(review.id, reviewer.id, frame.asset_id)
    sides = {candidate_as: frame.candidate_caption_id, ("B" if candidate_as == "A" else "A"): frame.baseline_caption_id}

    def column(caption: Caption, side: str, label: str, judge: dict) -> dict:
        return {
            "side": side,
            "label": label,
            "caption": caption,
            "fields": _current(caption, revisions),
            "original": caption.fields,
            "revision": revisions.get(caption.id),
            "flags": open_flags.get(caption.id, []),
            "given": caption.characters_given,
            "judge": judge,
        }

    columns = []
    for side in ("A", "B"):
        caption = by_id[sides[side]]
        is_candidate = caption.id == frame.candidate_caption_id
        label = review.candidate_label if is_candidate else review.baseline_label
        judge = frame.judge_candidate if is_candidate else frame.judge_baseline
        columns.append(column(caption, side, "" if blind else label, {} if blind else judge))
    for caption in captions:
        if caption.run_id in context_runs and caption.id not in sides.values():
            columns.append(column(caption, "", context_runs[caption.run_id], {}))
    rows = []
    for field in FIELDS:
        texts = [field_text(column["fields"], field) for column in columns]
        left, right = word_diff(texts[0], texts[1])
        parts = [left, right] + [[(text, False)] for text in texts[2:]]
        rows.append(
            {
                "field": field,
                "label": FIELD_LABELS[field],
                "cells": [
                    {"parts": part, "text": text, "judge": column["judge"].get(field), "column": column}
                    for part, text, column in zip(parts, texts, columns, strict=True)
                ],
            }
        )
    vote = ReviewVote.objects.filter(frame=frame, reviewer=reviewer).first()
    shown_choices = {}
    if vote is not None:  # back to what the reviewer clicked
        for field, choice in vote.choices.items():
            shown_choices[field] = (
                "same"
                if choice == Preference.SAME
                else (candidate_as if choice == Preference.CANDIDATE else sides_other(candidate_as))
            )
    return {
        "frame": frame,
        "columns": columns,
        "rows": rows,
        "vote": vote,
        "shown_choices": shown_choices,
        "previous": previous.first(),
        "next": following.first(),
        **_place_in_queue(frames, frame.position),
        "voted": ReviewVote.objects.filter(review=review, reviewer=reviewer).count(),
        "candidate_as": candidate_as,
    }


def _place_in_queue(frames: QuerySet[ReviewFrame], position: int) -> dict[str, int]:
    """The frame's index in the filtered queue and the queue's length, in one pass over it."""
    counts = frames.order_by().aggregate(total=Count("id"), before=Count("id", filter=Q(position__lt=position)))
    return {"index": counts["before"] + 1, "total": counts["total"]}


def sides_other(side: str) -> str:
    return "B" if side == "A" else "A"


def _preferences(votes: list[dict], field: str) -> list[int]:
    return [PREFERENCE_VALUE[vote["choices"][field]] for vote in votes if field in vote["choices"]]


def review_results(*, review: Review) -> dict:
    """Win rates per field and overall (pooled and per reviewer), agreement between reviewers on
    the frames they both voted on, and agreement of the judge's score differences with them.
    Worked out once per change of the review's votes or pairwise judgements (two aggregate
    queries tell), and cached: the results page and API are read far more often than voted on."""
    votes = ReviewVote.objects.filter(review=review).aggregate(n=Count("id"), last=Max("updated_at"))
    judged = PairwiseJudgement.objects.filter(frame__review=review).aggregate(n=Count("id"), last=Max("updated_at"))
    stamp = [review.id, review.created_at, votes["n"], votes["last"], judged["n"], judged["last"], RESULTS_FORMAT]
    key = "review-results:" + hashlib.sha256(repr(stamp).encode()).hexdigest()
    results = cache.get(key)
    if results is None:
        results = _review_results(review)
        cache.set(key, results, timeout=7 * 86400)
    return results


RESULTS_FORMAT = 1  # bump when _review_results' shape changes: cached results are then worked out again


def _review_results(review: Review) -> dict:
    from workers.metrics.agreement import agreement, win_rate

    votes = list(
        ReviewVote.objects.filter(review=review).values(
            "reviewer_id",
            "reviewer__username",
            "frame_id",
            "choices",
            "frame__judge_difference",
            "frame__judge_baseline",
            "frame__judge_candidate",
        )
    )
    reviewers = sorted({(v["reviewer_id"], v["reviewer__username"]) for v in votes}, key=lambda r: r[1])
    pooled = [{"field": f, "label": FIELD_LABELS[f], "result": win_rate(_preferences(votes, f))} for f in VOTE_FIELDS]
    per_reviewer = [
        {
            "reviewer": name,
            "votes": sum(1 for v in votes if v["reviewer_id"] == rid),
            "fields": [win_rate(_preferences([v for v in votes if v["reviewer_id"] == rid], f)) for f in VOTE_FIELDS],
        }
        for rid, name in reviewers
    ]
    by_reviewer = {rid: {v["frame_id"]: v["choices"] for v in votes if v["reviewer_id"] == rid} for rid, _ in reviewers}
    pairs = []
    for index, (first_id, first_name) in enumerate(reviewers):
        for second_id, second_name in reviewers[index + 1 :]:
            shared = sorted(set(by_reviewer[first_id]) & set(by_reviewer[second_id]))
            if not shared:
                continue
            row = {"reviewers": f"{first_name} & {second_name}", "frames": len(shared), "fields": []}
            for field in VOTE_FIELDS:
                both = [f for f in shared if field in by_reviewer[first_id][f] and field in by_reviewer[second_id][f]]
                row["fields"].append(
                    agreement(
                        [PREFERENCE_VALUE[by_reviewer[first_id][f][field]] for f in both],
                        [PREFERENCE_VALUE[by_reviewer[second_id][f][field]] for f in both],
                    )
                )
            pairs.append(row)
    judge = []
    for field in VOTE_FIELDS:
        people, scores = [], []
        for vote in votes:
            if field not in vote["choices"]:
                continue
            if field == "overall":
                difference = vote["frame__judge_difference"]
            else:
                first, second = vote["frame__judge_baseline"].get(field), vote["frame__judge_candidate"].get(field)
                difference = None if first is None or second is None else second - first
            if difference is not None:
                people.append(PREFERENCE_VALUE[vote["choices"][field]])
                scores.append(difference)
        judge.append({"field": field, "label": FIELD_LABELS[field], "scores": agreement(people, scores)})
    pairwise = _pairwise_agreement(review, votes)
    modes = []
    scored = next(row["scores"] for row in judge if row["field"] == "overall")
    if scored.n:
        modes.append({"mode": "1–10 scores (the evaluation's judge)", "agreement": scored})
    for row in pairwise:
        overall = row["fields"][-1]["agreement"]
        if overall.n:
            modes.append({"mode": f"pairwise, both orders ({row['judge']})", "agreement": overall})
    ranked = [mode for mode in modes if mode["agreement"].kappa is not None]
    return {
        "votes": len(votes),
        "frames_voted": len({v["frame_id"] for v in votes}),
        "pairwise": pairwise,
        "modes": modes,
        "best_mode": max(ranked, key=lambda mode: mode["agreement"].kappa)["mode"] if len(ranked) > 1 else None,
        "fields": [FIELD_LABELS[f] for f in VOTE_FIELDS],
        "pooled": pooled,
        "per_reviewer": per_reviewer,
        "pairs": pairs,
        "judge": judge,
        "judged": any(row["scores"].n for row in judge),
    }


def _pairwise_agreement(review: Review, votes: list[dict]) -> list[dict]:
    """Per judge model that compared this review's pairs: its combined verdicts against every vote."""
    from workers.metrics.agreement import agreement

    judged: dict[tuple[int, str], dict[int, dict]] = defaultdict(dict)
    statuses: dict[int, dict[str, int]] = defaultdict(lambda: {"ok": 0, "unparsable": 0, "error": 0})
    rows = PairwiseJudgement.objects.filter(frame__review=review).values(
        "judge_id", "judge__name", "frame_id", "status", "preferences"
    )
    for row in rows:
        statuses[row["judge_id"]][row["status"]] = statuses[row["judge_id"]].get(row["status"], 0) + 1
        if row["status"] == "ok":
            judged[(row["judge_id"], row["judge__name"])][row["frame_id"]] = row["preferences"]
    names = {row["judge_id"]: row["judge__name"] for row in rows}
    results = []
    for judge_id, name in sorted(names.items(), key=lambda item: item[1]):
        verdicts = judged.get((judge_id, name), {})
        fields = []
        for field in VOTE_FIELDS:
            people, machine = [], []
            for vote in votes:
                if field in vote["choices"] and vote["frame_id"] in verdicts:
                    people.append(PREFERENCE_VALUE[vote["choices"][field]])
                    machine.append(verdicts[vote["frame_id"]][field])
            fields.append({"field": field, "label": FIELD_LABELS[field], "agreement": agreement(people, machine)})
        results.append({"judge": name, "frames": len(verdicts), "statuses": statuses[judge_id], "fields": fields})
    return results


def review_tallies(*, review: Review, reviewer: User) -> dict:
    """The counts beside the frame, updated with every vote: this reviewer's votes, and every
    reviewer's overall verdicts so far (two queries)."""
    overall = {value: 0 for value in PREFERENCE_VALUE}
    counted = ReviewVote.objects.filter(review=review).values("choices__overall").annotate(n=Count("id"))
    for row in counted.order_by():
        if row["choices__overall"] in overall:
            overall[row["choices__overall"]] = row["n"]
    return {
        "mine": ReviewVote.objects.filter(review=review, reviewer=reviewer).count(),
        "frames": review.frame_count,
        "candidate": overall[Preference.CANDIDATE.value],
        "same": overall[Preference.SAME.value],
        "baseline": overall[Preference.BASELINE.value],
    }


def flag_queue(*, project: Project) -> list[dict]:
    """Captions with open flags (a correction raises one), newest first, each with its flags and
    newest revision: the lead's list to resolve."""
    flags = (
        CaptionFlag.objects.filter(caption__run__project=project, resolved_at__isnull=True)
        .select_related("raised_by", "review", "caption", "caption__asset")
        .order_by("-created_at")
    )
    grouped: dict[int, dict] = {}
    for flag in flags:
        entry = grouped.setdefault(flag.caption_id, {"caption": flag.caption, "flags": [], "review": flag.review})
        entry["flags"].append(flag)
    revisions: dict[int, CaptionRevision] = {}
    for revision in (
        CaptionRevision.objects.filter(caption_id__in=list(grouped)).select_related("author").order_by("number")
    ):
        revisions[revision.caption_id] = revision
    for caption_id, entry in grouped.items():
        entry["revision"] = revisions.get(caption_id)
        entry["fields"] = entry["revision"].fields if entry["revision"] else entry["caption"].fields
    return list(grouped.values())
