from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.audit import selectors
from apps.core.pages import after_param
from apps.core.permissions import Action, authorize
from apps.projects.selectors import project_get


@login_required
def project_log(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.VIEW_AUDIT)
    entries, next_after = selectors.audit_entries(project=project, after=after_param(request.GET.get("after")))
    return render(request, "audit/log.html", {"project": project, "entries": entries, "next_after": next_after})


@login_required
def accounts_log(request: HttpRequest) -> HttpResponse:
    """Role changes: they belong to no project, so any lead may read them."""
    authorize(request.user, Action.VIEW_AUDIT)
    entries, next_after = selectors.audit_entries(project=None, after=after_param(request.GET.get("after")))
    return render(request, "audit/log.html", {"project": None, "entries": entries, "next_after": next_after})
