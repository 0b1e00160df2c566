"""Reads for labelling pages and later stages: final gold labels, progress, agreement, anchoring."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import Http404

from apps.labeling.models import GoldLabel, GoldResolution, LabelingProject, LabelingTask
from apps.projects.models import Project


def labeling_project_list(*, project: Project) -> QuerySet[LabelingProject]:
    return LabelingProject.objects.filter(project=project).select_related("gold_set", "detection_run", "push_job")


def labeling_project_get(*, project: Project, labeling_project_id: int) -> LabelingProject:
    """Scoped to a project the caller already loaded through project_get (membership checked)."""
    labeling_project = labeling_project_list(project=project).filter(id=labeling_project_id).first()
    if labeling_project is None:
        raise Http404("No such labelling project.")
    return labeling_project


def queue_url(labeling_project: LabelingProject, public_url: str) -> str:
    """Label Studio's label stream: each logged-in annotator gets the next task not yet theirs."""
    if not labeling_project.ls_project_id or not public_url:
        return ""
    return f"{public_url.rstrip('/')}/projects/{labeling_project.ls_project_id}/data?labeling=1"


def active_labels(labeling_project: LabelingProject) -> QuerySet[GoldLabel]:
    """Labels that count: not skipped, not deleted in Label Studio."""
    return labeling_project.labels.filter(deleted=False, was_cancelled=False)


@dataclass
class FrameLabel:
    asset_id: int
    names: list[str] | None  # None while unlabelled or in conflict
    status: str  # unlabelled | single | agreed | conflict | resolved
    answers: list[tuple[str, list[str]]] = field(default_factory=list)  # (annotator, names)


def _annotator_name(label: GoldLabel) -> str:
    if label.annotator_id is not None:
        return label.annotator.username
    return label.ls_user_email or f"Label Studio user {label.ls_user_id}"


def frame_labels(labeling_project: LabelingProject) -> dict[int, FrameLabel]:
    """Each gold frame's label: one answer, unanimous answers, or a lead's resolution; else a conflict."""
    answers: dict[int, list[tuple[str, list[str]]]] = defaultdict(list)
    for label in active_labels(labeling_project).select_related("annotator").order_by("id"):
        answers[label.asset_id].append((_annotator_name(label), list(label.names)))
    resolutions = dict(
        GoldResolution.objects.filter(labeling_project=labeling_project).values_list("asset_id", "names")
    )
    frames = {}
    for asset_id in labeling_project.tasks.order_by("asset_id").values_list("asset_id", flat=True):
        given = answers.get(asset_id, [])
        distinct = {tuple(sorted(names)) for _, names in given}
        if asset_id in resolutions:
            frames[asset_id] = FrameLabel(asset_id, sorted(resolutions[asset_id]), "resolved", given)
        elif not given:
            frames[asset_id] = FrameLabel(asset_id, None, "unlabelled", given)
        elif len(distinct) == 1:
            frames[asset_id] = FrameLabel(
                asset_id, sorted(given[0][1]), "single" if len(given) == 1 else "agreed", given
            )
        else:
            frames[asset_id] = FrameLabel(asset_id, None, "conflict", given)
    return frames


def gold_label_map(labeling_project: LabelingProject) -> dict[int, list[str]]:
    """asset id → final names, for the frames that have a final label (training and evaluation read this)."""
    return {
        asset_id: frame.names for asset_id, frame in frame_labels(labeling_project).items() if frame.names is not None
    }


@dataclass
class AnnotatorProgress:
    annotator: str
    user: User | None
    labelled: int
    skipped: int
    remaining: int
    last_at: object


def annotator_progress(labeling_project: LabelingProject) -> list[AnnotatorProgress]:
    total = labeling_project.tasks.count()
    rows: dict[str, dict] = {}
    labels = labeling_project.labels.filter(deleted=False).select_related("annotator").order_by("ls_updated_at")
    for label in labels:
        row = rows.setdefault(
            _annotator_name(label), {"user": label.annotator, "tasks": set(), "skipped": 0, "labelled": 0, "last": None}
        )
        row["tasks"].add(label.task_id)
        row["skipped" if label.was_cancelled else "labelled"] += 1
        row["last"] = label.ls_updated_at
    return [
        AnnotatorProgress(name, row["user"], row["labelled"], row["skipped"], total - len(row["tasks"]), row["last"])
        for name, row in sorted(rows.items())
    ]


def _jaccard(a: list[str], b: list[str]) -> float:
    union = set(a) | set(b)
    return 1.0 if not union else len(set(a) & set(b)) / len(union)


@dataclass
class Agreement:
    frames_with_several: int
    unanimous: int
    mean_pairwise_jaccard: float | None
    conflicts: list[FrameLabel]
    resolved: int


def agreement(labeling_project: LabelingProject, frames: dict[int, FrameLabel] | None = None) -> Agreement:
    frames = frames if frames is not None else frame_labels(labeling_project)
    several = [frame for frame in frames.values() if len(frame.answers) >= 2]
    pairs = [_jaccard(a[1], b[1]) for frame in several for a, b in combinations(frame.answers, 2)]
    unanimous = sum(1 for frame in several if len({tuple(names) for _, names in frame.answers}) == 1)
    return Agreement(
        frames_with_several=len(several),
        unanimous=unanimous,
        mean_pairwise_jaccard=sum(pairs) / len(pairs) if pairs else None,
        conflicts=[frame for frame in frames.values() if frame.status == "conflict"],
        resolved=sum(1 for frame in frames.values() if frame.status == "resolved"),
    )


@dataclass
class Anchoring:
    """Do annotators accept pre-annotations more often than the detector is right?

    `accepted_unchanged`: share of answers on pre-filled frames equal to the prediction.
    `control_accuracy`: share of control frames (labelled blind) where the hidden prediction
    equals the final label — the detector's real exact-match accuracy. A large gap suggests
    annotators anchor on the pre-annotation.
    """

    prefilled_answers: int
    accepted_unchanged: float | None
    control_frames: int
    control_accuracy: float | None
    prefilled_accuracy: float | None

    @property
    def gap(self) -> float | None:
        if self.accepted_unchanged is None or self.control_accuracy is None:
            return None
        return self.accepted_unchanged - self.control_accuracy


def anchoring(labeling_project: LabelingProject, frames: dict[int, FrameLabel] | None = None) -> Anchoring:
    frames = frames if frames is not None else frame_labels(labeling_project)
    tasks = {task.asset_id: task for task in LabelingTask.objects.filter(labeling_project=labeling_project)}
    prefilled = {a for a, t in tasks.items() if not t.is_control and t.predicted_names is not None}
    answers = [
        (asset_id, names)
        for asset_id, names in active_labels(labeling_project).values_list("asset_id", "names")
        if asset_id in prefilled
    ]
    accepted = sum(1 for asset_id, names in answers if sorted(names) == sorted(tasks[asset_id].predicted_names))

    def accuracy(asset_ids: set[int]) -> tuple[int, float | None]:
        judged = [
            a
            for a in asset_ids
            if frames.get(a) and frames[a].names is not None and tasks[a].predicted_names is not None
        ]
        hits = sum(1 for a in judged if sorted(tasks[a].predicted_names) == frames[a].names)
        return len(judged), (hits / len(judged) if judged else None)

    control_count, control_accuracy = accuracy({a for a, t in tasks.items() if t.is_control})
    _, prefilled_accuracy = accuracy(prefilled)
    return Anchoring(
        prefilled_answers=len(answers),
        accepted_unchanged=accepted / len(answers) if answers else None,
        control_frames=control_count,
        control_accuracy=control_accuracy,
        prefilled_accuracy=prefilled_accuracy,
    )


def character_distribution(
    labeling_project: LabelingProject, frames: dict[int, FrameLabel] | None = None
) -> list[tuple[str, int]]:
    """How many final-labelled frames show each character (roster order; "(nobody)" last)."""
    frames = frames if frames is not None else frame_labels(labeling_project)
    counts: Counter[str] = Counter()
    nobody = 0
    for frame in frames.values():
        if frame.names is None:
            continue
        counts.update(frame.names)
        nobody += not frame.names
    roster = list(labeling_project.project.characters.order_by("name").values_list("name", flat=True))
    return [(name, counts.get(name, 0)) for name in roster] + [("(nobody)", nobody)]
