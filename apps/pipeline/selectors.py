"""The project's pipeline as its lead sees it: each stage of the method, what state it is in, its
key number, and what to do next. Each stage reads its newest rows and its newest job; nothing here
counts a run's frames (the stored counts say it), so the page costs the same at any size."""

from dataclasses import dataclass, field, replace

from django.contrib.auth.models import User
from django.db.models import Count
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from apps.captioning.models import Caption, CaptionRun, Detection, DetectionRun
from apps.core.permissions import Action, can
from apps.curation.models import ClusteringRun, EmbeddingRun, GoldSet, GoldSetStatus
from apps.evaluation.models import CaptionScore, Comparison
from apps.exports.models import Export
from apps.jobs.models import Job, JobStatus
from apps.jobs.selectors import latest_jobs
from apps.labeling.models import GoldLabel, GoldResolution, LabelingProject, LabelingStatus
from apps.labeling.selectors import labeling_summary, labelstudio_account_of, queue_url
from apps.media.models import Asset, Video
from apps.media.selectors import asset_count
from apps.projects.models import Project
from apps.review.models import CaptionFlag, CaptionRevision, Preference, Review, ReviewVote
from apps.review.selectors import FIELD_LABELS, review_tallies
from apps.training.models import TrainingRun
from apps.training.selectors import before_after


class StageState:
    NOT_STARTED = "not-started"
    RUNNING = "running"
    DONE = "done"
    ATTENTION = "attention"


STATE_LABELS = {
    StageState.NOT_STARTED: "Not started",
    StageState.RUNNING: "Running",
    StageState.DONE: "Done",
    StageState.ATTENTION: "Needs attention",
}

# Each stage's jobs: the newest of them says whether the stage is running, or how it last ended.
STAGE_JOB_KINDS = {
    "footage": ["ingest"],
    "embeddings": ["embed"],
    "clustering": ["cluster"],
    "gold_set": ["sample_gold"],
    "labelling": ["labeling_push"],
    "fine_tuning": ["train_detector"],
    "runs": ["detect", "caption"],
    "evaluation": ["evaluate"],
    "review": ["review_pairwise_judge"],
    "export": ["dataset_export"],
}


@dataclass(frozen=True)
class Stage:
    key: str
    title: str
    state: str
    summary: str  # the key number, for people ("2,161 frames from 1 video")
    url: str  # the stage's page
    start_label: str  # what the next-action button says when this stage is next
    start_url: str = ""  # where that button goes, when not to the stage's page
    note: str = ""  # what is still open, or what went wrong
    job: Job | None = None  # the job running now, or the failed one
    is_next: bool = False
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, url) of its latest results

    @property
    def next_url(self) -> str:
        return self.start_url or self.url

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def number(self) -> int:
        return list(STAGE_JOB_KINDS).index(self.key) + 1


def _url(name: str, project: Project, *ids: int) -> str:
    return reverse(name, args=[project.id, *ids])


def _n(value: int, noun: str, plural: str | None = None) -> str:
    return f"{value:,} {noun if value == 1 else (plural or noun + 's')}"


def _job_state(job: Job | None, result_at) -> tuple[str | None, str, Job | None]:
    """The state a stage's newest job gives it: running; failed since its last result (attention);
    or None: the stage's rows decide."""
    if job is None:
        return None, "", None
    if not job.is_finished:
        return StageState.RUNNING, job.message, job
    if job.status == JobStatus.FAILED and (result_at is None or job.created_at > result_at):
        return StageState.ATTENTION, f"The last run failed: {job.error or job.message}"[:300], job
    return None, "", None


def _stage(key: str, title: str, url: str, start_label: str, newest_job: Job | None, result_at, **done) -> Stage:
    """A stage in the state its newest job gives it, else in `done`'s (state, summary, note…)."""
    state, note, shown_job = _job_state(newest_job, result_at)
    base = Stage(key=key, title=title, url=url, start_label=start_label, **done)
    if state is None:
        return base
    return replace(base, state=state, note=note or base.note, job=shown_job)


def _not_started(key: str, title: str, url: str, start_label: str, newest_job: Job | None, summary: str) -> Stage:
    """A stage with nothing to show yet (unless its first job is running, or failed)."""
    return _stage(key, title, url, start_label, newest_job, None, state=StageState.NOT_STARTED, summary=summary)


def _footage(project: Project, job: Job | None, frames: int) -> Stage:
    videos = Video.objects.filter(project=project).count()
    return _stage(
        "footage",
        "Footage",
        _url("media:browser", project),
        "Upload footage",
        job,
        None if not frames else project.created_at,
        state=StageState.DONE if frames else StageState.NOT_STARTED,
        start_url=_url("media:ingest", project),
        summary=(f"{_n(frames, 'frame')} from {_n(videos, 'video')}" if videos else _n(frames, "image"))
        if frames
        else "No footage yet",
        links=[("Upload more", _url("media:ingest", project))] if frames else [],
    )


def _embeddings(project: Project, job: Job | None, frames: int) -> Stage:
    run = EmbeddingRun.objects.filter(project=project).order_by("-id").first()
    url = _url("curation:overview", project)
    if run is None:
        return _not_started("embeddings", "Embeddings", url, "Embed the frames", job, "No embeddings yet")
    missing = max(frames - run.count, 0)
    return _stage(
        "embeddings",
        "Embeddings",
        url,
        "Embed the new frames",
        job,
        run.created_at,
        state=StageState.ATTENTION if missing else StageState.DONE,
        summary=f"{_n(run.count, 'vector')} · {run.model_shown}",
        note=f"{_n(missing, 'frame')} added since: not embedded yet" if missing else "",
    )


def _clustering(project: Project, job: Job | None) -> Stage:
    run = ClusteringRun.objects.filter(project=project).order_by("-id").first()
    url = _url("curation:overview", project)
    if run is None:
        return _not_started("clustering", "Clustering", url, "Cluster the embeddings", job, "No clustering yet")
    return _stage(
        "clustering",
        "Clustering",
        url,
        "Cluster again",
        job,
        run.created_at,
        state=StageState.DONE,
        summary=f"{_n(run.n_clusters, 'cluster')} over {_n(run.point_count, 'frame')} · {run.noise_share:.0%} noise",
        links=[("Projection", _url("curation:clustering", project, run.id))],
    )


def _gold_set(project: Project, job: Job | None) -> Stage:
    gold_set = GoldSet.objects.filter(project=project).annotate(size=Count("items")).order_by("-version").first()
    url = _url("curation:overview", project)
    if gold_set is None:
        return _not_started("gold_set", "Gold set", url, "Sample a gold set", job, "No gold set yet")
    frozen = gold_set.status == GoldSetStatus.FROZEN
    return _stage(
        "gold_set",
        "Gold set",
        _url("curation:gold_set", project, gold_set.id),
        "Open the gold set",
        job,
        gold_set.created_at,
        state=StageState.DONE,
        summary=f"v{gold_set.version} · {_n(gold_set.size, 'frame')} · {'frozen' if frozen else 'draft'}",
        note="" if frozen else "A draft: sending it to Label Studio freezes it.",
    )


def _labelling(project: Project, job: Job | None) -> Stage:
    labeling = LabelingProject.objects.filter(project=project).select_related("gold_set").order_by("-id").first()
    url = _url("labeling:index", project)
    if labeling is None:
        return _not_started(
            "labelling", "Labelling", url, "Send the gold set to Label Studio", job, "Not in Label Studio yet"
        )
    detail = _url("labeling:detail", project, labeling.id)
    if labeling.status == LabelingStatus.FAILED:
        return _stage("labelling", "Labelling", detail, "Retry the push", job, None, state=StageState.ATTENTION,
                      summary=str(labeling.gold_set), note="Pushing the tasks to Label Studio failed.")  # fmt: skip
    summary = labeling_summary(labeling)
    final, total = summary["final"], summary["frames_total"]
    conflicts = summary["statuses"]["conflict"]
    left = summary["statuses"]["unlabelled"]
    # Labelling is done once every frame has a final label, or once a fine-tuning run has used the
    # labels given so far (the lead moved on): what is still open is then a note, not a blocker.
    used = TrainingRun.objects.filter(labeling_project=labeling).exists()
    note = " · ".join(
        f"{_n(count, 'frame')} {text}" for count, text in ((left, "left to label"), (conflicts, "in conflict")) if count
    )
    if labeling.sync_error:
        state, note = StageState.ATTENTION, f"Label Studio could not be reached: {labeling.sync_error}"[:300]
    elif final == total or used:
        state = StageState.DONE
    elif conflicts and not left:
        state = StageState.ATTENTION
    else:
        state = StageState.RUNNING
    jaccard = summary["agreement"]["mean_pairwise_jaccard"]  # over the frames several annotators answered
    return _stage(
        "labelling",
        "Labelling",
        detail,
        "Resolve the conflicts" if state == StageState.ATTENTION else "Open the labelling",
        job,
        labeling.created_at,
        state=state,
        summary=f"{final:,} of {_n(total, 'frame')} labelled · {_n(summary['labellers'], 'annotator')}"
        + (f" · agreement (Jaccard) {jaccard:.2f}" if jaccard is not None else ""),
        note=note,
    )


def _fine_tuning(project: Project, job: Job | None) -> Stage:
    run = TrainingRun.objects.filter(project=project).select_related("job").order_by("-id").first()
    url = _url("training:index", project)
    if run is None:
        return _not_started("fine_tuning", "Fine-tuning", url, "Fine-tune the detector", job, "No fine-tuning yet")
    detail = _url("training:detail", project, run.id)
    compared = before_after(run)
    f1 = compared["rows"][0] if compared else None  # ("Sample-F1", before, after, higher is better)
    summary = f"Sample-F1 {f1[1]:.2f} → {f1[2]:.2f} on validation" if f1 and None not in f1[1:3] else str(run)
    if run.result_version_id is not None:
        state, note = StageState.DONE, ""
    elif run.job is not None and not run.job.is_finished:
        state, note, job = StageState.RUNNING, run.job.message, run.job
    else:
        state, note = StageState.ATTENTION, f"{run} made no adapter: see its page."
    return _stage(
        "fine_tuning",
        "Fine-tuning",
        detail,
        "Fine-tune again" if state == StageState.DONE else "Open the run",
        job,
        run.created_at if state == StageState.DONE else None,
        state=state,
        summary=summary,
        note=note,
        job=job if state == StageState.RUNNING else None,
        links=[("Curves", detail)],
    )


def _runs(project: Project, jobs: dict[str, Job]) -> Stage:
    captions = CaptionRun.objects.filter(project=project).order_by("-id")
    latest = captions.first()
    detections = DetectionRun.objects.filter(project=project).count()
    url = _url("captioning:runs", project)
    job = max((jobs[kind] for kind in ("detect", "caption") if kind in jobs), key=lambda j: j.id, default=None)
    if latest is None:
        summary = f"{_n(detections, 'detection run')} · no captions yet" if detections else "No runs yet"
        return _not_started("runs", "Detection & captioning", url, "Detect and caption", job, summary)
    return _stage(
        "runs",
        "Detection & captioning",
        url,
        "Caption more frames",
        job,
        latest.created_at,
        state=StageState.DONE,
        summary=f"{_n(detections, 'detection run')} · {_n(captions.count(), 'caption run')} · "
        f"latest: {latest.answered_count:,} of {_n(latest.frame_count, 'frame')} captioned",
        note=f"{_n(latest.failed_count, 'caption')} of the latest run failed to parse" if latest.failed_count else "",
        links=[("Latest captions", _url("captioning:caption_run", project, latest.id))],
    )


def _evaluation(project: Project, job: Job | None) -> Stage:
    url = _url("evaluation:index", project)
    row = (
        Comparison.objects.filter(project=project)
        .order_by("-id")
        .values("id", "created_at", "report__table2", "report__meta__eval_frames")
        .first()
    )
    table = (row or {}).get("report__table2") or []
    if not table:
        return _not_started("evaluation", "Evaluation", url, "Evaluate the pipelines", job, "No report yet")
    clip = " · ".join(
        f"{line['pipeline']} {line['clip_score_mean']:.2f}"
        for line in table
        if isinstance(line.get("clip_score_mean"), int | float)
    )
    detail = _url("evaluation:detail", project, row["id"])
    return _stage(
        "evaluation",
        "Evaluation",
        detail,
        "Evaluate again",
        job,
        row["created_at"],
        state=StageState.DONE,
        summary=f"{_n(len(table), 'pipeline')} on {_n(row['report__meta__eval_frames'] or 0, 'frame')}"
        + (f" · CLIPScore {clip}" if clip else ""),
        links=[("Report", detail)],
    )


def _review(project: Project, job: Job | None) -> Stage:
    review = Review.objects.filter(project=project).order_by("-id").first()
    url = _url("review:index", project)
    if review is None:
        return _not_started("review", "Review", url, "Start a review", job, "No review yet")
    votes = ReviewVote.objects.filter(review=review).aggregate(n=Count("id"), people=Count("reviewer", distinct=True))
    detail = _url("review:compare", project, review.id)
    return _stage(
        "review",
        "Review",
        detail,
        "Open the review",
        job,
        review.created_at,
        state=StageState.DONE,
        summary=f"{review.name}: {_n(review.frame_count, 'frame')} · {_n(votes['n'], 'vote')}"
        f" from {_n(votes['people'], 'reviewer')}",
        note="" if votes["n"] else "Ready for reviewers: no votes yet.",
        links=[("Results", _url("review:results", project, review.id))],
    )


def _export(project: Project, job: Job | None) -> Stage:
    export = Export.objects.filter(project=project).order_by("-id").first()
    url = _url("exports:index", project)
    if export is None or not (export.archive or export.result):
        return _not_started("export", "Export", url, "Export the dataset", job, "Nothing exported yet")
    detail = _url("exports:detail", project, export.id)
    return _stage(
        "export",
        "Export",
        detail,
        "Export again",
        job,
        export.created_at,
        state=StageState.DONE,
        summary=f"{_n(export.frames, 'frame')} · {export.get_format_display()}"
        f" · {filesizeformat(export.archive_bytes)}",
        links=[("Download", _url("exports:download", project, export.id))],
    )


def project_pipeline(*, project: Project) -> list[Stage]:
    """Every stage of the method for the lead, the first one not done marked as the next step."""
    jobs = latest_jobs(project=project, kinds=[kind for kinds in STAGE_JOB_KINDS.values() for kind in kinds])
    frames = asset_count(project=project)  # counted once: the footage and embeddings stages both read it
    stages = [
        _footage(project, jobs.get("ingest"), frames),
        _embeddings(project, jobs.get("embed"), frames),
        _clustering(project, jobs.get("cluster")),
        _gold_set(project, jobs.get("sample_gold")),
        _labelling(project, jobs.get("labeling_push")),
        _fine_tuning(project, jobs.get("train_detector")),
        _runs(project, jobs),
        _evaluation(project, jobs.get("evaluate")),
        _review(project, jobs.get("review_pairwise_judge")),
        _export(project, jobs.get("dataset_export")),
    ]
    next_index = next((i for i, stage in enumerate(stages) if stage.state != StageState.DONE), None)
    if next_index is not None:
        stages[next_index] = replace(stages[next_index], is_next=True)
    return stages


def pipeline_running(stages: list[Stage]) -> bool:
    return any(stage.state == StageState.RUNNING and stage.job is not None for stage in stages)


@dataclass(frozen=True)
class LabellingQueue:
    labeling_project: LabelingProject
    url: str  # the app's labelling page
    queue_url: str  # Label Studio's label stream
    labelled: int  # frames this annotator has answered
    remaining: int  # frames this annotator has not answered yet


def annotator_queues(*, project: Project, user: User, public_url: str) -> list[LabellingQueue]:
    """The Label Studio projects ready for annotators, with how many frames this one has done."""
    queues = []
    ready = LabelingProject.objects.filter(project=project, status=LabelingStatus.READY).order_by("-id")
    for labeling in ready.select_related("gold_set")[:5]:
        summary = labeling_summary(labeling)
        mine = next((row for row in summary["progress"] if row["annotator"] == user.username), None)
        queues.append(
            LabellingQueue(
                labeling_project=labeling,
                url=_url("labeling:detail", project, labeling.id),
                queue_url=queue_url(labeling, public_url),
                labelled=mine["labelled"] if mine else 0,
                remaining=mine["remaining"] if mine else summary["frames_total"],
            )
        )
    return queues


def annotator_account(*, user: User) -> str:
    """The e-mail of the user's Label Studio account; empty when a lead has not made one yet."""
    account = labelstudio_account_of(user)
    return account.ls_email if account else ""


def reviewer_queues(*, project: Project, user: User) -> list[dict]:
    """The project's reviews with this reviewer's tallies: how far they are through each."""
    return [
        {
            "review": review,
            "tallies": review_tallies(review=review, reviewer=user),
            "url": _url("review:compare", project, review.id),
        }  # fmt: skip
        for review in Review.objects.filter(project=project).order_by("-id")[:5]
    ]


# --- one frame, everything known about it ------------------------------------------------------

FRAME_ROWS = 30  # rows of each kind a frame's page lists, newest first, beside the total


@dataclass(frozen=True)
class Listed:
    """The newest rows of one kind, and how many there are in all."""

    rows: list
    total: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.rows)


def _listed(queryset) -> Listed:
    rows = list(queryset[:FRAME_ROWS])
    return Listed(rows, len(rows) if len(rows) < FRAME_ROWS else queryset.count())


PREFERENCE_LABELS = dict(Preference.choices)


def _shown(fields: dict | None) -> dict | None:
    """A caption's fields for the page: salient objects as one line whether stored as text (the
    schema's) or as a list (what some models answer)."""
    if not fields:
        return fields
    objects = fields.get("salient_objects")
    return {**fields, "salient_objects": ", ".join(map(str, objects)) if isinstance(objects, list) else objects}


def frame_record(*, project: Project, asset: Asset, user: User) -> dict:
    """Every gold label, detection, caption (with its corrections, scores and flags) and review
    vote of one frame. Others' gold labels and review votes only for a lead: an annotator or a
    reviewer sees their own, so that the page never shows them another's answer before they give
    theirs. A constant number of queries, whatever the number of runs."""
    lead = can(user, Action.MANAGE_LABELING)
    labels = GoldLabel.objects.filter(asset=asset, labeling_project__project=project)
    if not lead:
        labels = labels.filter(annotator=user)
    resolutions = GoldResolution.objects.filter(asset=asset, labeling_project__project=project)
    detections = _listed(
        Detection.objects.filter(asset=asset, run__project=project).select_related("run").order_by("-id")
    )
    captions = _listed(Caption.objects.filter(asset=asset, run__project=project).select_related("run").order_by("-id"))
    caption_ids = [caption.id for caption in captions.rows]
    revisions: dict[int, CaptionRevision] = {}
    for revision in CaptionRevision.objects.filter(caption_id__in=caption_ids).select_related("author"):
        revisions[revision.caption_id] = revision  # ordered by number: the last one is current
    scores: dict[int, list[dict]] = {}
    run_ids = {caption.run_id: caption.id for caption in captions.rows}
    for score in CaptionScore.objects.filter(asset=asset, pipeline__caption_run_id__in=run_ids).select_related(
        "pipeline"
    ):
        judged = [(FIELD_LABELS.get(name, name), value) for name, value in (score.judge_scores or {}).items()]
        scores.setdefault(run_ids[score.pipeline.caption_run_id], []).append({"score": score, "judged": judged})
    flags: dict[int, list[CaptionFlag]] = {}
    for flag in CaptionFlag.objects.filter(caption_id__in=caption_ids).select_related("raised_by"):
        flags.setdefault(flag.caption_id, []).append(flag)
    votes = ReviewVote.objects.filter(frame__asset=asset, review__project=project)
    if not can(user, Action.MANAGE_REVIEWS):
        votes = votes.filter(reviewer=user)
    return {
        "labels": _listed(labels.select_related("annotator", "labeling_project__gold_set").order_by("-id")),
        "resolutions": list(resolutions.select_related("resolved_by", "labeling_project__gold_set")[:FRAME_ROWS]),
        "detections": detections,
        "captions": captions,
        "caption_rows": [
            {
                "caption": caption,
                "fields": _shown(revisions[caption.id].fields if caption.id in revisions else caption.fields),
                "revision": revisions.get(caption.id),
                "scores": scores.get(caption.id, []),
                "flags": flags.get(caption.id, []),
            }
            for caption in captions.rows
        ],
        "votes": (votes := _listed(votes.select_related("review", "reviewer", "frame").order_by("-id"))),
        "vote_rows": [
            {
                "vote": vote,
                "overall": PREFERENCE_LABELS.get(vote.choices.get("overall"), "—"),
                "fields": [
                    (FIELD_LABELS[name], PREFERENCE_LABELS.get(choice, choice))
                    for name, choice in vote.choices.items()
                    if name != "overall" and name in FIELD_LABELS
                ],
            }
            for vote in votes.rows
        ],
        "sees_all": lead,
    }
