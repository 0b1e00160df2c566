"""Reads for exports: which caption each frame exports, with its provenance, and what each filter keeps.

Everything streams: captions are read a chunk of frames at a time, with the chunk's revisions,
judge scores, review votes and open flags in a few queries, so an export of any size holds one
chunk in memory.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from itertools import islice
from pathlib import Path
from typing import Any

from django.db.models import Q
from django.http import Http404

from apps.captioning.models import Caption, CaptionRun
from apps.evaluation.models import CaptionScore
from apps.exports.models import FILTER_LABELS, Export, ExportSource
from apps.projects.models import Character, Project
from apps.review.models import CaptionFlag, CaptionFlagKind, CaptionRevision, Preference, ReviewVote
from apps.review.selectors import caption_names

CHUNK = 500
CAPTION_FIELDS = ("scene", "background", "characters", "salient_objects")


@dataclass(frozen=True)
class ExportFilters:
    """Which frames an export keeps. Every filter is off by default: all captioned frames."""

    min_judge_score: float | None = None  # the judge's overall score (1-10); frames never judged fail it
    require_adherence: bool = False  # the captioner's answer fit the schema as written (or a person corrected it)
    exclude_flagged: bool = False  # no open reviewer flag (a correction awaiting a lead's look is no flag)
    only_reviewed: bool = False  # a reviewer voted on it or corrected it
    only_with_characters: bool = False

    LABELS = FILTER_LABELS

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "ExportFilters":
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"Unknown export filters: {', '.join(unknown)}")
        score = values.get("min_judge_score")
        if score in ("", None):
            score = None
        else:
            if isinstance(score, bool):
                raise ValueError("min_judge_score must be a number from 1 to 10.")
            score = float(score)
            if not 1 <= score <= 10:
                raise ValueError("min_judge_score must be a number from 1 to 10.")
        return cls(
            min_judge_score=score,
            **{
                name: bool(values.get(name, False))
                for name in ("require_adherence", "exclude_flagged", "only_reviewed", "only_with_characters")
            },
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def active(self) -> list[str]:
        return [name for name, value in self.to_dict().items() if value not in (None, False)]


@dataclass
class ExportCandidate:
    """One frame's chosen caption, with everything its record and the filters need."""

    caption: Caption
    fields: dict[str, Any]  # the newest person's revision, else the model's
    revision: int | None  # the revision number exported, None for the model's own caption
    adheres: bool
    health: dict[str, Any]
    judge: dict[str, Any] | None
    votes: dict[str, int] = field(default_factory=lambda: {"preferred": 0, "same": 0, "other_preferred": 0})
    open_flags: list[str] = field(default_factory=list)

    @property
    def corrected(self) -> bool:
        return self.revision is not None

    @property
    def reviewed(self) -> bool:
        return self.corrected or any(self.votes.values())

    @property
    def names(self) -> list[str]:
        """The caption's characters, each once (a captioner may list a name twice)."""
        return list(dict.fromkeys(caption_names(self.fields)))

    def passes(self, filters: ExportFilters) -> dict[str, bool]:
        """Each active filter → whether this frame passes it."""
        checks = {
            "min_judge_score": lambda: (
                self.judge is not None
                and self.judge["overall"] is not None
                and self.judge["overall"] >= filters.min_judge_score
            ),
            "require_adherence": lambda: self.adheres,
            "exclude_flagged": lambda: not self.open_flags,
            "only_reviewed": lambda: self.reviewed,
            "only_with_characters": lambda: bool(self.names),
        }
        return {name: checks[name]() for name in filters.active()}

    def fingerprint(self) -> str:
        """What decides this frame's exported record: for reusing an identical earlier export."""
        return json.dumps(
            [self.caption.id, self.revision, self.judge, self.votes, sorted(self.open_flags)],
            sort_keys=True,
            default=str,
        )


def _usable(caption: Caption, revision_fields: dict | None) -> bool:
    return bool(revision_fields or caption.fields)


def _health(caption: Caption, corrected: bool) -> tuple[bool, dict[str, Any]]:
    """The model-free check of the captioner's answer (workers/metrics/health.py); a corrected
    caption was validated against the schema when it was saved, so it adheres."""
    from workers.metrics.health import caption_health

    result = caption_health(caption.id, caption.raw_text or "", str.split)
    health = {
        "repairs": list(result.repairs),
        "missing_fields": list(result.missing_fields),
        "empty_fields": list(result.empty_fields),
        "error": result.error,
    }
    return (result.adheres or corrected), health


def _choice_for(vote_choice: str, caption_is_candidate: bool) -> str:
    if vote_choice == Preference.SAME:
        return "same"
    preferred_candidate = vote_choice == Preference.CANDIDATE
    return "preferred" if preferred_candidate == caption_is_candidate else "other_preferred"


def _chunk_context(captions: list[Caption]) -> dict[str, Any]:
    """The chunk's revisions, judge scores, votes and open flags, in four queries."""
    ids = [caption.id for caption in captions]
    latest: dict[int, CaptionRevision] = {}
    for revision in CaptionRevision.objects.filter(caption_id__in=ids).order_by("caption_id", "number"):
        latest[revision.caption_id] = revision
    run_ids = {caption.run_id for caption in captions}
    asset_ids = {caption.asset_id for caption in captions}
    scores: dict[tuple[int, int], CaptionScore] = {}
    scored = (
        CaptionScore.objects.filter(asset_id__in=asset_ids, judge_status="ok")
        .filter(Q(pipeline__caption_run_id__in=run_ids) | Q(pipeline__test_caption_run_id__in=run_ids))
        .select_related("pipeline__comparison__judge")
        .order_by("id")  # the newest evaluation's score wins
    )
    for score in scored:
        for run_id in (score.pipeline.caption_run_id, score.pipeline.test_caption_run_id):
            if run_id in run_ids:
                scores[(run_id, score.asset_id)] = score
    votes: dict[int, dict[str, int]] = defaultdict(lambda: {"preferred": 0, "same": 0, "other_preferred": 0})
    voted = ReviewVote.objects.filter(
        Q(frame__baseline_caption_id__in=ids) | Q(frame__candidate_caption_id__in=ids)
    ).values_list("choices", "frame__baseline_caption_id", "frame__candidate_caption_id")
    for choices, baseline_id, candidate_id in voted:
        overall = (choices or {}).get("overall")
        if not overall:
            continue
        for caption_id, is_candidate in ((baseline_id, False), (candidate_id, True)):
            if caption_id in ids:
                votes[caption_id][_choice_for(overall, is_candidate)] += 1
    flags: dict[int, list[str]] = defaultdict(list)
    open_flags = CaptionFlag.objects.filter(caption_id__in=ids, resolved_at__isnull=True).exclude(
        kind=CaptionFlagKind.CORRECTED
    )
    for caption_id, kind in open_flags.values_list("caption_id", "kind"):
        flags[caption_id].append(kind)
    return {"latest": latest, "scores": scores, "votes": votes, "flags": flags}


def _candidate(caption: Caption, context: dict[str, Any]) -> ExportCandidate | None:
    revision = context["latest"].get(caption.id)
    if not _usable(caption, revision.fields if revision else None):
        return None  # nothing to export: the captioner's answer could not be read and nobody wrote one
    adheres, health = _health(caption, corrected=revision is not None)
    score = context["scores"].get((caption.run_id, caption.asset_id))
    judge = None
    if score is not None:
        judge = {
            "judge": str(score.pipeline.comparison.judge) if score.pipeline.comparison.judge else "",
            "comparison_id": score.pipeline.comparison_id,
            "overall": score.judge_overall,
            "scores": dict(score.judge_scores or {}),
        }
    return ExportCandidate(
        caption=caption,
        fields=dict(revision.fields) if revision else dict(caption.fields),
        revision=revision.number if revision else None,
        adheres=adheres,
        health=health,
        judge=judge,
        votes=dict(context["votes"][caption.id]),
        open_flags=sorted(context["flags"].get(caption.id, [])),
    )


def _best(candidates: list[ExportCandidate]) -> ExportCandidate:
    """A person's correction first, then the judge's overall score, then a caption that fits the
    schema, then the newest run: judges of different evaluations are compared as they are."""

    def rank(candidate: ExportCandidate):
        overall = candidate.judge["overall"] if candidate.judge and candidate.judge["overall"] is not None else -1.0
        return (candidate.corrected, overall, candidate.adheres, candidate.caption.run_id)

    return max(candidates, key=rank)


# Columns a chunk of captions never reads: not loaded once per caption.
RUN_LARGE_COLUMNS = ("prompt_example", "detection_run__prompt_example")


def _with_runs(captions: list[Caption]) -> list[Caption]:
    """The chunk's runs (with their models and detection runs) loaded once, without their lists."""
    runs = CaptionRun.objects.filter(id__in={caption.run_id for caption in captions}).select_related(
        "model_version", "detection_run__model_version"
    )
    by_id = {run.id: run for run in runs.defer(*RUN_LARGE_COLUMNS)}
    for caption in captions:
        caption.run = by_id[caption.run_id]
    return captions


def export_candidates(
    *, project: Project, source: str, caption_run: CaptionRun | None = None, chunk_size: int = CHUNK
) -> Iterator[ExportCandidate]:
    """Each frame's caption to export, in frame order: the run's, or the best of every run's.
    Frames are read `chunk_size` at a time from where the last chunk ended: memory stays flat."""
    if source == ExportSource.RUN:
        if caption_run is None or caption_run.project_id != project.id:
            raise ValueError("An export of one caption run needs a run of this project.")
        captions = Caption.objects.filter(run=caption_run)
    else:
        captions = Caption.objects.filter(run__project=project)
    last_asset_id = 0
    while True:
        chunk_ids = list(
            captions.filter(asset_id__gt=last_asset_id)
            .order_by("asset_id")
            .values_list("asset_id", flat=True)
            .distinct()[:chunk_size]
        )
        if not chunk_ids:
            return
        last_asset_id = chunk_ids[-1]
        chunk = _with_runs(
            list(captions.filter(asset_id__in=chunk_ids).select_related("asset__video").order_by("asset_id", "run_id"))
        )
        context = _chunk_context(chunk)
        by_asset: dict[int, list[ExportCandidate]] = defaultdict(list)
        for caption in chunk:
            candidate = _candidate(caption, context)
            if candidate is not None:
                by_asset[caption.asset_id].append(candidate)
        for asset_id in chunk_ids:
            if by_asset.get(asset_id):
                yield _best(by_asset[asset_id])


def export_frames_total(*, project: Project, source: str, caption_run: CaptionRun | None = None) -> int:
    """Frames with a caption in the source, exportable or not (a progress bar's total)."""
    if source == ExportSource.RUN and caption_run is not None:
        return caption_run.answered_count  # a run has one caption a frame, counted as they are stored
    captions = (
        Caption.objects.filter(run=caption_run)
        if source == ExportSource.RUN
        else Caption.objects.filter(run__project=project)
    )
    return captions.values("asset_id").distinct().count()


@dataclass(frozen=True)
class ExportPreview:
    """How many frames the source has, how many each filter keeps on its own, and how many all keep."""

    captioned: int  # frames with a caption in the source
    exportable: int  # of those, with a caption to export (readable, or corrected)
    kept_by: dict[str, int]  # active filter → frames it keeps on its own
    kept: int  # frames every active filter keeps
    inputs_key: str  # what decides the exported records: the same key, the same export
    lint: dict[str, Any] | None = None  # the health check of what would be exported (LintReport.to_dict)
    limit: int | None = None  # counted over the first `limit` exportable frames only (None: all)

    @property
    def sampled(self) -> bool:
        return self.limit is not None and self.exportable >= self.limit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_preview(
    *,
    project: Project,
    source: str,
    filters: ExportFilters,
    caption_run: CaptionRun | None = None,
    template: str | None = None,
    limit: int | None = None,
) -> ExportPreview:
    """Counts for the form, and with a `template` the lint of exactly the records the export would
    write (their dense captions made with it). With a `limit`, of the first `limit` frames only
    (the page's preview: it answers at once at any size; the export itself counts and lints all)."""
    linter = None
    if template is not None:
        from workers.exports.dense import DenseTemplate
        from workers.exports.lint import CaptionLinter

        linter = CaptionLinter(export_lint_config(project), DenseTemplate(template))
    kept_by = dict.fromkeys(filters.active(), 0)
    exportable = kept = 0
    digest = hashlib.sha256(json.dumps([source, caption_run.id if caption_run else None, filters.to_dict()]).encode())
    candidates = export_candidates(
        project=project, source=source, caption_run=caption_run, chunk_size=min(limit or CHUNK, CHUNK)
    )
    for candidate in islice(candidates, limit):  # islice: the chunk after the limit is never read
        exportable += 1
        passes = candidate.passes(filters)
        for name, passed in passes.items():
            kept_by[name] += passed
        if all(passes.values()):
            kept += 1
            digest.update(candidate.fingerprint().encode())
            if linter is not None:
                linter.add(candidate_record(candidate, project))
    return ExportPreview(
        captioned=export_frames_total(project=project, source=source, caption_run=caption_run),
        exportable=exportable,
        kept_by=kept_by,
        kept=kept,
        inputs_key=digest.hexdigest(),
        lint=linter.report().to_dict() if linter is not None else None,
        limit=limit,
    )


def export_kept(export: Export) -> Iterator[ExportCandidate]:
    """The candidates every filter of the export keeps, in frame order."""
    filters = ExportFilters.from_mapping(export.filters)
    for candidate in export_candidates(project=export.project, source=export.source, caption_run=export.caption_run):
        if all(candidate.passes(filters).values()):
            yield candidate


def candidate_provenance(candidate: ExportCandidate, project: Project) -> dict[str, Any]:
    """Where a record came from: written into every exported record."""
    caption, asset, run = candidate.caption, candidate.caption.asset, candidate.caption.run
    detection_run = run.detection_run
    return {
        "project": project.name,
        "project_id": project.id,
        "asset_id": asset.id,
        "source_video": asset.video.original_name if asset.video else asset.original_name or None,
        "video_id": asset.video_id,
        "timestamp_seconds": asset.timestamp_seconds,
        "caption_id": caption.id,
        "caption_run_id": run.id,
        "pipeline": run.pipeline,
        "captioner": caption.model_version_label or str(run.model_version),
        "detector": str(detection_run.model_version) if detection_run else None,
        "detection_run_id": detection_run.id if detection_run else None,
        "characters_given": list(caption.characters_given or []),
        "prompt_versions": {
            "caption": run.prompt_version,
            "detection": detection_run.prompt_version if detection_run else None,
        },
        "judge": candidate.judge,
        "adherence": {"adheres": candidate.adheres, **candidate.health},
        "review_votes": candidate.votes,
        "open_flags": candidate.open_flags,
        "corrected": candidate.corrected,
        "revision": candidate.revision,
    }


def _open_image(name: str):
    from django.core.files.storage import default_storage

    return default_storage.open(name, "rb")


def candidate_record(candidate: ExportCandidate, project: Project):
    """The frame as the format writers take it (workers/exports): the image read from storage only
    when the writer copies it."""
    from workers.exports.records import ExportRecord

    asset, fields = candidate.caption.asset, candidate.fields
    image_name = asset.image.name
    return ExportRecord(
        key=str(asset.id),
        file_stem=f"{asset.id:08d}",
        image=lambda: _open_image(image_name),
        image_ext=(Path(image_name).suffix.lower() or ".jpg"),
        scene=str(fields.get("scene") or ""),
        background=str(fields.get("background") or ""),
        characters=candidate.names,
        salient_objects=str(fields.get("salient_objects") or ""),
        character_mentions=[m for m in fields.get("characters") or [] if isinstance(m, dict)],
        provenance=candidate_provenance(candidate, project),
    )


def export_lint_config(project: Project):
    """Lint settings for the project's exports: its roster's names are names, never identity phrases."""
    from workers.exports.lint import LintConfig

    names = Character.objects.filter(project=project).order_by("name").values_list("name", flat=True)
    return LintConfig(character_names=tuple(names))


def export_list(*, project: Project):
    return Export.objects.filter(project=project).select_related("job", "caption_run", "created_by")


def export_get(*, project: Project, export_id: int) -> Export:
    export = export_list(project=project).filter(id=export_id).first()
    if export is None:
        raise Http404("No such export.")
    return export


def export_done_before(
    *, project: Project, inputs_key: str, format: str, template: str, shard_size: int, out_dir: str
) -> Export | None:
    """A succeeded export of the same records in the same shape (with --reuse)."""
    earlier = (
        Export.objects.filter(
            project=project,
            inputs_key=inputs_key,
            format=format,
            template=template,
            shard_size=shard_size,
            out_dir=out_dir,
            job__status="succeeded",
        )
        .order_by("-id")
        .first()
    )
    if earlier is None or not earlier.archive or not earlier.archive.storage.exists(earlier.archive.name):
        return None  # its archive is gone: export again
    if out_dir and not Path(out_dir).is_dir():
        return None
    return earlier
