"""Reads for labelling pages and later stages: final gold labels, progress, agreement, anchoring.

Which answers count is decided here, when they are read: an answer counts only if it came from a
Label Studio account the app made (LabelStudioAccount) for an active member of the project whose
role labels (annotator or lead), and Label Studio still reports the e-mail the account was made
with. Every other answer is kept and listed as ignored, with the reason; it never reaches the gold
labels, agreement, anchoring, training or evaluation. Removing a member or their role takes their
answers out at once, and giving it back puts them back — nothing is rewritten.
"""

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from itertools import combinations

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core.permissions import Role, user_role
from apps.jobs.models import Job
from apps.labeling.models import (
    GoldLabel,
    GoldResolution,
    LabelingProject,
    LabelingStatus,
    LabelingSummary,
    LabelingTask,
    LabelStudioAccount,
    PendingAnnotation,
)
from apps.projects.models import Character, Membership, Project

# The roles whose answers are gold labels (apps/core/permissions.py: annotators label, leads can
# do everything the others can; reviewers compare captions and do not label).
LABELLING_ROLES = frozenset({Role.ANNOTATOR, Role.LEAD})
# The labelling page keeps polling this long after the last change (annotators are at work).
LIVE_WINDOW = timedelta(minutes=2)
HEALTH_CACHE_KEY = "labeling:labelstudio-health"
# An older health reading asks the worker for a new one (the page never asks Label Studio itself).
HEALTH_FRESH_FOR = timedelta(minutes=2)


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


# --- who labels -------------------------------------------------------------------------------


def labelling_members(project: Project) -> list[User]:
    """Active members of the project whose role labels (superusers act as leads), with their account."""
    users = (
        User.objects.filter(memberships__project=project, is_active=True)
        .select_related("labelstudio_account")
        .prefetch_related("groups")
        .order_by("username")
    )
    return [user for user in users if user_role(user) in LABELLING_ROLES]


def labelstudio_account_of(user: User) -> LabelStudioAccount | None:
    try:
        return user.labelstudio_account
    except LabelStudioAccount.DoesNotExist:
        return None


@dataclass(frozen=True)
class Labeller:
    """A Label Studio account whose answers count in a project."""

    user_id: int
    username: str
    ls_user_id: int
    ls_email: str


def labellers(project: Project) -> dict[int, Labeller]:
    """Label Studio user id → labeller, as of now (membership, role and account)."""
    found = {}
    for user in labelling_members(project):
        account = labelstudio_account_of(user)
        if account is not None:
            found[account.ls_user_id] = Labeller(user.id, user.username, account.ls_user_id, account.ls_email)
    return found


def _counts(label: GoldLabel, labellers_: dict[int, Labeller]) -> Labeller | None:
    labeller = labellers_.get(label.ls_user_id) if label.ls_user_id is not None else None
    return labeller if labeller is not None and label.ls_user_email == labeller.ls_email else None


def _counted(labellers_: dict[int, Labeller]) -> Q:
    condition = Q(pk__in=[])
    for labeller in labellers_.values():
        condition |= Q(ls_user_id=labeller.ls_user_id, ls_user_email=labeller.ls_email)
    return condition


def active_labels(
    labeling_project: LabelingProject, labellers_: dict[int, Labeller] | None = None
) -> QuerySet[GoldLabel]:
    """Labels that count: by a labeller of the project, not skipped, not deleted in Label Studio."""
    labellers_ = labellers(labeling_project.project) if labellers_ is None else labellers_
    return labeling_project.labels.filter(_counted(labellers_), deleted=False, was_cancelled=False)


# --- final labels -----------------------------------------------------------------------------


@dataclass
class FrameLabel:
    asset_id: int
    names: list[str] | None  # None while unlabelled or in conflict
    status: str  # unlabelled | single | agreed | conflict | resolved
    answers: list[tuple[str, list[str]]] = field(default_factory=list)  # (annotator, names)


def frame_labels(
    labeling_project: LabelingProject, labellers_: dict[int, Labeller] | None = None
) -> dict[int, FrameLabel]:
    """Each gold frame's label: one answer, unanimous answers, or a lead's resolution; else a conflict."""
    labellers_ = labellers(labeling_project.project) if labellers_ is None else labellers_
    answers: dict[int, list[tuple[str, list[str]]]] = defaultdict(list)
    rows = active_labels(labeling_project, labellers_).order_by("id").values_list("asset_id", "ls_user_id", "names")
    for asset_id, ls_user_id, names in rows:
        answers[asset_id].append((labellers_[ls_user_id].username, list(names)))
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
    """asset id → final names, for the frames that have a final label (training and evaluation read this).

    Only counted answers (see the module docstring) and a lead's resolutions make a final label.
    """
    return {
        asset_id: frame.names for asset_id, frame in frame_labels(labeling_project).items() if frame.names is not None
    }


@dataclass
class AnnotatorProgress:
    annotator: str
    labelled: int
    skipped: int
    remaining: int
    last_at: object


def annotator_progress(
    labeling_project: LabelingProject, labellers_: dict[int, Labeller] | None = None
) -> list[AnnotatorProgress]:
    labellers_ = labellers(labeling_project.project) if labellers_ is None else labellers_
    total = labeling_project.tasks.count()
    rows: dict[str, dict] = {}
    labels = labeling_project.labels.filter(_counted(labellers_), deleted=False)
    for ls_user_id, task_id, cancelled, updated_at in labels.order_by("ls_updated_at").values_list(
        "ls_user_id", "task_id", "was_cancelled", "ls_updated_at"
    ):
        row = rows.setdefault(
            labellers_[ls_user_id].username, {"tasks": set(), "skipped": 0, "labelled": 0, "last": None}
        )
        row["tasks"].add(task_id)
        row["skipped" if cancelled else "labelled"] += 1
        row["last"] = updated_at
    return [
        AnnotatorProgress(name, row["labelled"], row["skipped"], total - len(row["tasks"]), row["last"])
        for name, row in sorted(rows.items())
    ]


@dataclass
class IgnoredLabel:
    ls_annotation_id: int
    asset_id: int
    who: str
    names: list[str]
    skipped: bool
    updated_at: object
    reason: str


def ignored_labels(
    labeling_project: LabelingProject, labellers_: dict[int, Labeller] | None = None
) -> list[IgnoredLabel]:
    """Answers kept but not counted (not deleted in Label Studio), each with why."""
    project = labeling_project.project
    labellers_ = labellers(project) if labellers_ is None else labellers_
    labels = [
        label
        for label in labeling_project.labels.filter(deleted=False).order_by("asset_id", "id")
        if _counts(label, labellers_) is None
    ]
    ls_ids = {label.ls_user_id for label in labels if label.ls_user_id is not None}
    accounts = {
        account.ls_user_id: account
        for account in LabelStudioAccount.objects.filter(ls_user_id__in=ls_ids)
        .select_related("user")
        .prefetch_related("user__groups")
    }
    members = set(
        Membership.objects.filter(project=project, user_id__in=[a.user_id for a in accounts.values()]).values_list(
            "user_id", flat=True
        )
    )
    ignored = []
    for label in labels:
        who = (
            f"{label.ls_user_email} (Label Studio user {label.ls_user_id})"
            if label.ls_user_email
            else f"Label Studio user {label.ls_user_id}"
        )
        reason = _ignored_because(label, accounts.get(label.ls_user_id), members)
        ignored.append(
            IgnoredLabel(
                label.ls_annotation_id, label.asset_id, who, list(label.names), label.was_cancelled,
                label.ls_updated_at, f"{who} is not a labelling member of this project: {reason}",
            )
        )  # fmt: skip
    return ignored


def _ignored_because(label: GoldLabel, account: LabelStudioAccount | None, members: set[int]) -> str:
    if label.ls_user_id is None:
        return "Label Studio recorded no user for this answer."
    if account is None:
        return "the app did not make this Label Studio account (accounts are made from the labelling page)."
    if account.ls_email != label.ls_user_email:
        return f"the app made this account for {account.ls_email}, and Label Studio now reports another e-mail."
    user = account.user
    if not user.is_active:
        return f"{user.username}'s app account is deactivated."
    if user.id not in members:
        return f"{user.username} is not a member of this project."
    role = user_role(user)
    return f"{user.username} is {'a ' + role.label.lower() if role else 'without a role'}; annotators and leads label."


# --- agreement and anchoring ------------------------------------------------------------------


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


def anchoring(
    labeling_project: LabelingProject,
    frames: dict[int, FrameLabel] | None = None,
    labellers_: dict[int, Labeller] | None = None,
) -> Anchoring:
    labellers_ = labellers(labeling_project.project) if labellers_ is None else labellers_
    frames = frames if frames is not None else frame_labels(labeling_project, labellers_)
    tasks = {task.asset_id: task for task in LabelingTask.objects.filter(labeling_project=labeling_project)}
    prefilled = {a for a, t in tasks.items() if not t.is_control and t.predicted_names is not None}
    answers = [
        (asset_id, names)
        for asset_id, names in active_labels(labeling_project, labellers_).values_list("asset_id", "names")
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
    labeling_project: LabelingProject, frames: dict[int, FrameLabel] | None = None, roster: list[str] | None = None
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
    if roster is None:
        roster = list(labeling_project.project.characters.order_by("name").values_list("name", flat=True))
    return [(name, counts.get(name, 0)) for name in roster] + [("(nobody)", nobody)]


# --- the labelling page: computed once per change ----------------------------------------------


@dataclass(frozen=True)
class SummaryKey:
    """What the labelling page's summary depends on: a poll compares `key` and stops there."""

    key: str
    labellers: dict[int, Labeller]
    roster: list[str]


def labeling_summary_key(labeling_project: LabelingProject) -> SummaryKey:
    """Three small queries: the labellers (users, their groups) and the roster. The rest of what the
    page shows changes only with `data_version` (bumped by the push, the syncs and resolutions)."""
    labellers_ = labellers(labeling_project.project)
    characters = Character.objects.filter(project=labeling_project.project).order_by("name")
    roster = list(characters.values_list("name", flat=True))
    material = [labeling_project.data_version, sorted(map(list, map(_labeller_tuple, labellers_.values()))), roster]
    key = hashlib.sha256(json.dumps(material).encode()).hexdigest()
    return SummaryKey(key, labellers_, roster)


def _labeller_tuple(labeller: Labeller) -> tuple:
    return (labeller.ls_user_id, labeller.ls_email, labeller.user_id, labeller.username)


SUMMARY_LIST_ROWS = 100


def labeling_summary(labeling_project: LabelingProject, key: SummaryKey | None = None) -> dict:
    """The labelling page's numbers (progress, agreement, anchoring, distribution, ignored answers),
    stored with the key they were computed from and computed again only when it changes."""
    key = key or labeling_summary_key(labeling_project)
    stored = LabelingSummary.objects.filter(labeling_project=labeling_project).values_list("key", "data").first()
    if stored is not None and stored[0] == key.key:
        data = stored[1]
    else:
        data = _summary(labeling_project, key)
        LabelingSummary.objects.update_or_create(
            labeling_project=labeling_project, defaults={"key": key.key, "data": data}
        )
    return _revived(data)


def _summary(labeling_project: LabelingProject, key: SummaryKey) -> dict:
    frames = frame_labels(labeling_project, key.labellers)
    statuses = {status: 0 for status in ("unlabelled", "single", "agreed", "resolved", "conflict")}
    for frame in frames.values():
        statuses[frame.status] += 1
    agreement_ = agreement(labeling_project, frames)
    anchoring_ = anchoring(labeling_project, frames, key.labellers)
    distribution = character_distribution(labeling_project, frames, key.roster)
    ignored = ignored_labels(labeling_project, key.labellers)
    agreement_fields = asdict(agreement_)
    # The page lists at most SUMMARY_LIST_ROWS of each (a gold set of thousands of frames can have
    # hundreds of conflicts), with the totals; the labels themselves stay rows.
    agreement_fields["conflicts"] = agreement_fields["conflicts"][:SUMMARY_LIST_ROWS]
    return json.loads(
        json.dumps(
            {
                "frames_total": len(frames),
                "statuses": statuses,
                "final": statuses["single"] + statuses["agreed"] + statuses["resolved"],
                "progress": [asdict(row) for row in annotator_progress(labeling_project, key.labellers)],
                "agreement": agreement_fields,
                "anchoring": {**asdict(anchoring_), "gap": anchoring_.gap},
                "distribution": distribution,
                "ignored": [asdict(row) for row in ignored[:SUMMARY_LIST_ROWS]],
                "ignored_count": len(ignored),
                "labellers": len(key.labellers),
            },
            default=lambda value: value.isoformat(),
        )
    )


def _revived(data: dict) -> dict:
    """Timestamps back to datetimes for the templates' date filter."""
    for row in [*data.get("progress", []), *data.get("ignored", [])]:
        for name in ("last_at", "updated_at"):
            if isinstance(row.get(name), str):
                row[name] = parse_datetime(row[name])
    return data


def labeling_live(labeling_project: LabelingProject) -> bool:
    """Is anything about to change what the page shows? Then the page polls; otherwise it stops."""

    push_job = labeling_project.push_job
    if labeling_project.status in (LabelingStatus.PENDING, LabelingStatus.PUSHING):
        return True
    if push_job is not None and not push_job.is_finished:
        return True
    if labeling_project.sync_queued:
        return True
    changed_at = labeling_project.data_changed_at
    if changed_at is not None and timezone.now() - changed_at < LIVE_WINDOW:
        return True
    if PendingAnnotation.objects.filter(labeling_project=labeling_project).exists():
        return True
    return Job.objects.filter(
        kind="labeling_sync",
        project_id=labeling_project.project_id,
        status__in=["queued", "running"],
        params__labeling_project_id=labeling_project.id,
    ).exists()


# --- Label Studio's health, as the worker last saw it ------------------------------------------


def labelstudio_health() -> dict | None:
    """{"state": up|down|unconfigured, "detail", "checked_at", "fresh"}; None before the first check.
    Read from the cache the worker writes (services.health): a page never waits on Label Studio."""
    try:
        reading = cache.get(HEALTH_CACHE_KEY)
    except Exception:  # noqa: BLE001 — the cache is down: as if never checked
        return None
    if not isinstance(reading, dict):
        return None
    checked_at = parse_datetime(reading.get("checked_at") or "")
    fresh = checked_at is not None and timezone.now() - checked_at < HEALTH_FRESH_FOR
    return {**reading, "checked_at": checked_at, "fresh": fresh}
