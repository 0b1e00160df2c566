from typing import Any

from django.contrib.auth.models import User

from apps.audit.context import current_actor
from apps.audit.models import AuditAction, AuditEntry
from apps.projects.models import Project

SYSTEM = "system"


def audit_record(
    *,
    action: AuditAction,
    actor: User | None,
    target: str,
    summary: str,
    project: Project | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. Called inside the service's own transaction, so an action rolled back
    leaves no entry behind. `actor` None: the request's user if there is one, else the system."""
    actor = actor or current_actor()
    return AuditEntry.objects.create(
        action=action,
        actor=actor,
        actor_name=actor.get_username() if actor is not None else SYSTEM,
        project=project,
        project_name=project.name if project is not None else "",
        target=target[:200],
        summary=summary[:500],
        detail=detail or {},
    )
