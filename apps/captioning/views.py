"""Pages to launch detection and captioning runs, follow them, and read their outputs."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.captioning import selectors, services
from apps.captioning.forms import CaptionLaunchForm, DetectionLaunchForm
from apps.core.errors import ApplicationError
from apps.core.htmx import stop_polling
from apps.core.pages import after_param, keyset_page
from apps.core.permissions import Action, authorize
from apps.curation.selectors import gold_set_list
from apps.modelhub.forms import ModelVersionForm
from apps.modelhub.models import ModelRole, ModelVersion
from apps.modelhub.services import model_versions_ensure
from apps.projects.selectors import project_get

# Answers on one page of a run; the next page loads as the reader scrolls. A caption row (four
# fields, its characters) costs about twice a detection row to render.
RUN_PAGE_ROWS = {"detections": 50, "captions": 25}


def _versions(project, role):
    return ModelVersion.objects.filter(project=project, role=role).order_by("-is_default", "name")


@login_required
def runs(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    detection_runs = selectors.detection_run_list(project=project)
    context = {
        "project": project,
        "detection_runs": detection_runs[:30],
        "caption_runs": selectors.caption_run_list(project=project)[:30],
        "detect_form": DetectionLaunchForm(
            detectors=_versions(project, ModelRole.DETECTOR), gold_sets=gold_set_list(project=project)
        ),
        "caption_form": CaptionLaunchForm(
            captioners=_versions(project, ModelRole.CAPTIONER), detection_runs=detection_runs[:30]
        ),
        "model_versions": ModelVersion.objects.filter(project=project).order_by("role", "-is_default", "name"),
        "model_form": ModelVersionForm(),
    }
    return render(request, "captioning/runs.html", context)


@login_required
@require_POST
def detection_launch(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.RUN_MODELS)
    model_versions_ensure(project=project)
    form = DetectionLaunchForm(
        request.POST, detectors=_versions(project, ModelRole.DETECTOR), gold_sets=gold_set_list(project=project)
    )
    if not form.is_valid():
        messages.error(request, f"Check the form: {form.errors.as_text()}")
        return redirect("captioning:runs", project_id=project.id)
    try:
        run = services.detection_run_start(
            project=project,
            model_version=_versions(project, ModelRole.DETECTOR).get(id=form.cleaned_data["detector"]),
            gold_set=gold_set_list(project=project).get(id=form.cleaned_data["gold_set"]),
            created_by=request.user,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("captioning:runs", project_id=project.id)
    return redirect("captioning:detection_run", project_id=project.id, run_id=run.id)


@login_required
@require_POST
def caption_launch(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.RUN_MODELS)
    detection_runs = selectors.detection_run_list(project=project)
    form = CaptionLaunchForm(
        request.POST, captioners=_versions(project, ModelRole.CAPTIONER), detection_runs=detection_runs
    )
    if not form.is_valid():
        messages.error(request, f"Check the form: {form.errors.as_text()}")
        return redirect("captioning:runs", project_id=project.id)
    detection_run = detection_runs.get(id=form.cleaned_data["detection_run"])
    limit = form.cleaned_data["limit"]
    try:
        run = services.caption_run_start(
            project=project,
            model_version=_versions(project, ModelRole.CAPTIONER).get(id=form.cleaned_data["captioner"]),
            pipeline=form.cleaned_data["pipeline"],
            asset_ids=detection_run.frame_ids(0, limit or None),
            detection_run=detection_run,
            frames_from=f"the {f'first {limit} ' if limit else ''}frames of detection run #{detection_run.id}",
            created_by=request.user,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("captioning:runs", project_id=project.id)
    return redirect("captioning:caption_run", project_id=project.id, run_id=run.id)


# What a run page can be narrowed to (`?show=`): each is an index range (migration 0010's partial
# indexes), so a page of the few failures of a million-frame run is read without a scan.
RUN_PAGE_FILTERS = {
    "all": lambda answers: answers,
    "failed": lambda answers: answers.filter(ok=False),
    "flagged": lambda answers: answers.exclude(flags=[]),
}


def _run_page(request: HttpRequest, project, run, answers, kind: str) -> HttpResponse:
    """A run's page: its figures, then its answers a keyset page at a time (htmx loads the next
    page when the reader reaches the end, as the footage browser does). `?part=stats` is its
    figures alone, which the page polls while the run's job runs (286 once it has ended: htmx
    stops; the progress bar then reloads the page once, rows and all)."""
    if request.htmx and request.GET.get("part") == "stats":
        response = render(request, "captioning/_run_stats.html", {"project": project, "run": run, "kind": kind})
        return stop_polling(response) if run.job is None or run.job.is_finished else response
    name = {"detections": "detection", "captions": "caption"}[kind]
    show = request.GET.get("show") if request.GET.get("show") in RUN_PAGE_FILTERS else "all"
    rows, next_after = keyset_page(
        RUN_PAGE_FILTERS[show](answers).select_related("asset", "asset__video"),
        after_param(request.GET.get("after")),
        RUN_PAGE_ROWS[kind],
    )
    context = {
        "project": project,
        "run": run,
        "rows": rows,
        "next_after": next_after,
        "show": show,
        "show_choices": [("all", "every answer"), ("failed", f"failed ({run.failed_count:,})"), ("flagged", "flagged")],
    }
    template = f"captioning/_{name}_rows.html" if request.htmx else f"captioning/{name}_run.html"
    return render(request, template, context)


@login_required
def detection_run_detail(request: HttpRequest, project_id: int, run_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    run = selectors.detection_run_get(project=project, run_id=run_id)
    return _run_page(request, project, run, run.detections, "detections")


@login_required
def caption_run_detail(request: HttpRequest, project_id: int, run_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    run = selectors.caption_run_get(project=project, run_id=run_id)
    return _run_page(request, project, run, run.captions, "captions")


@login_required
def caption_run_health(request: HttpRequest, project_id: int, run_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    run = selectors.caption_run_get(project=project, run_id=run_id)
    try:
        token_limit = max(1, int(request.GET.get("limit", 1024)))
    except ValueError:
        token_limit = 1024
    health = services.caption_run_health_refresh(run=run)
    context = {
        "project": project,
        "run": run,
        "health": health,
        "token_limit": token_limit,
        "too_long": selectors.captions_over(run, token_limit),
    }
    return render(request, "captioning/caption_health.html", context)
