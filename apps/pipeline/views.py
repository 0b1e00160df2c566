from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.core.htmx import HTMX_STOP_POLLING
from apps.core.permissions import Action, Role, authorize, user_role
from apps.media.selectors import asset_get
from apps.pipeline import selectors
from apps.projects.selectors import project_get


@login_required
def pipeline(request: HttpRequest, project_id: int) -> HttpResponse:
    """The project's home: for a lead every stage of the method with its state and the next
    action; for an annotator their labelling queue, for a reviewer their reviews. Loaded into the
    project page by htmx (the panel alone), or opened on its own (the whole page). The lead's panel
    polls while a stage's job runs and stops (286) once none does."""
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.VIEW_PROJECT)
    role = user_role(request.user)
    context: dict = {"project": project, "role": role}
    if role == Role.LEAD:
        stages = selectors.project_pipeline(project=project)
        context |= {
            "stages": stages,
            "running": selectors.pipeline_running(stages),
            "all_done": not any(stage.is_next for stage in stages),
        }
    elif role == Role.ANNOTATOR:
        context |= {
            "queues": selectors.annotator_queues(
                project=project, user=request.user, public_url=settings.LABEL_STUDIO_PUBLIC_URL
            ),
            "ls_email": selectors.annotator_account(user=request.user),
            "ls_url": settings.LABEL_STUDIO_PUBLIC_URL,
        }
    elif role == Role.REVIEWER:
        context["reviews"] = selectors.reviewer_queues(project=project, user=request.user)
    if request.htmx:
        response = render(request, "pipeline/_panel.html", context)
        if request.GET.get("poll") and not context.get("running"):
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "pipeline/page.html", context)


@login_required
def frame_record(request: HttpRequest, project_id: int, asset_id: int) -> HttpResponse:
    """The frame page's panel of everything the later stages know of one frame."""
    project = project_get(user=request.user, project_id=project_id)
    asset = asset_get(user=request.user, asset_id=asset_id, project=project)
    record = selectors.frame_record(project=project, asset=asset, user=request.user)
    return render(request, "pipeline/_frame_record.html", {"project": project, "asset": asset, **record})
