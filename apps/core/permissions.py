"""Who may do what: one table, used by pages and API alike.

A user's role is the group they belong to (created by a data migration); project-scoped actions
also need membership of the project. Non-members get 404 (the project does not exist for them),
members without the role get 403.
"""

from enum import StrEnum

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db import models


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    LEAD = "lead", "Lead"
    REVIEWER = "reviewer", "Reviewer"


class Action(StrEnum):
    VIEW_PROJECT = "view_project"
    CREATE_PROJECT = "create_project"
    EDIT_PROJECT = "edit_project"
    MANAGE_MEMBERS = "manage_members"
    EDIT_ROSTER = "edit_roster"
    INGEST_MEDIA = "ingest_media"
    CURATE = "curate"
    RUN_MODELS = "run_models"
    VIEW_JOBS = "view_jobs"
    LAUNCH_JOB = "launch_job"
    CANCEL_JOB = "cancel_job"
    MANAGE_LABELING = "manage_labeling"  # push gold sets to Label Studio, sync, resolve conflicts
    REVIEW_CAPTIONS = "review_captions"  # vote on captions side by side, correct and flag them
    MANAGE_REVIEWS = "manage_reviews"  # make reviews, resolve flagged and corrected captions
    EXPORT_DATASET = "export_dataset"  # export the captioned dataset and download it
    VIEW_AUDIT = "view_audit"  # read the audit log: who launched, cancelled, exported, corrected, changed roles


EVERYONE = frozenset(Role)
LEADS = frozenset({Role.LEAD})
REVIEWERS = frozenset({Role.REVIEWER, Role.LEAD})

POLICY: dict[Action, frozenset[Role]] = {
    Action.VIEW_PROJECT: EVERYONE,
    Action.CREATE_PROJECT: LEADS,
    Action.EDIT_PROJECT: LEADS,
    Action.MANAGE_MEMBERS: LEADS,
    Action.EDIT_ROSTER: LEADS,
    Action.INGEST_MEDIA: LEADS,
    Action.CURATE: LEADS,
    Action.RUN_MODELS: LEADS,
    Action.VIEW_JOBS: EVERYONE,
    Action.LAUNCH_JOB: LEADS,
    Action.CANCEL_JOB: LEADS,
    Action.MANAGE_LABELING: LEADS,
    Action.REVIEW_CAPTIONS: REVIEWERS,
    Action.MANAGE_REVIEWS: LEADS,
    Action.EXPORT_DATASET: LEADS,
    Action.VIEW_AUDIT: LEADS,
}


def user_role(user: User | AnonymousUser) -> Role | None:
    """The user's role; superusers act as leads. A user in several role groups gets the strongest."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.LEAD
    names = {group.name for group in user.groups.all()}
    for role in (Role.LEAD, Role.REVIEWER, Role.ANNOTATOR):
        if role.value in names:
            return role
    return None


def can(user: User | AnonymousUser, action: Action) -> bool:
    role = user_role(user)
    return role is not None and role in POLICY[action]


def authorize(user: User | AnonymousUser, action: Action) -> None:
    """Raise PermissionDenied (403) unless the user's role allows the action.

    Membership is checked separately by the selectors that load the project (404 for outsiders).
    """
    if not can(user, action):
        raise PermissionDenied(f"Your role may not {action.value.replace('_', ' ')}.")
