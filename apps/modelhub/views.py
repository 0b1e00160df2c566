from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError
from apps.core.permissions import Action, authorize
from apps.modelhub import services
from apps.modelhub.forms import ModelVersionForm
from apps.modelhub.models import ModelVersion
from apps.projects.selectors import project_get


@login_required
@require_POST
def model_version_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.RUN_MODELS)
    form = ModelVersionForm(request.POST)
    if form.is_valid():
        try:
            version = services.model_version_create(project=project, **form.cleaned_data)
            messages.success(request, f"Added {version.get_role_display().lower()} {version.name}.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, f"Check the model form: {form.errors.as_text()}")
    return redirect("captioning:runs", project_id=project.id)


@login_required
@require_POST
def model_version_default(request: HttpRequest, project_id: int, version_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.RUN_MODELS)
    version = get_object_or_404(ModelVersion, project=project, id=version_id)
    services.model_version_make_default(version=version)
    messages.success(request, f"{version.name} is now the default {version.get_role_display().lower()}.")
    return redirect("captioning:runs", project_id=project.id)
