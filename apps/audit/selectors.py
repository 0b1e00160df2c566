from apps.audit.models import AuditAction, AuditEntry
from apps.core.pages import keyset_page
from apps.projects.models import Project

PAGE_SIZE = 100


def audit_entries(*, project: Project | None, after: int | None) -> tuple[list[AuditEntry], int | None]:
    """One page, newest first, and where the next (older) page starts. `project` None: the role
    changes, which belong to no project."""
    if project is not None:
        entries = AuditEntry.objects.filter(project=project)
    else:
        entries = AuditEntry.objects.filter(action=AuditAction.ROLE_CHANGED)
    return keyset_page(entries.select_related("actor"), after, PAGE_SIZE, newest_first=True)
