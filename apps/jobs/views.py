import json
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError
from apps.core.htmx import stop_polling
from apps.core.permissions import Action, authorize
from apps.jobs import selectors, services
from apps.jobs.forms import JobFilterForm
from apps.jobs.kinds import JOB_KINDS, launchable_kinds
from apps.projects.selectors import project_get, project_list


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Every job the user may see, filtered by project, kind and status (kept in the URL), the
    periodic Label Studio syncs left out unless asked for."""
    authorize(request.user, Action.VIEW_JOBS)
    projects = project_list(user=request.user)
    form = JobFilterForm(request.GET, projects=projects)
    filters = form.filters()
    ordering = form.cleaned_data.get("ordering") or "newest"
    jobs = selectors.job_list(
        user=request.user,
        project=projects.filter(id=filters["project"]).first() if "project" in filters else None,
        status=filters.get("status"),
        kind=filters.get("kind"),
        ordering=ordering,
        shards=False,
        housekeeping=filters.get("housekeeping", False),
    )
    page = Paginator(jobs, 25).get_page(request.GET.get("page"))
    template = "jobs/_job_table.html" if request.htmx else "jobs/dashboard.html"
    context = {
        "page": page,
        "form": form,
        "filtered": bool(set(filters) - {"housekeeping"}),
        "filters_query": urlencode({**filters, "ordering": ordering}),
    }
    return render(request, template, context)


@login_required
def project_jobs(request: HttpRequest, project_id: int) -> HttpResponse:
    """The project page's jobs panel: its ten newest jobs and, for leads, the launch form."""
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.VIEW_PROJECT)
    context = {
        "project": project,
        "jobs": selectors.job_list(user=request.user, project=project, shards=False, housekeeping=False)[:10],
        "job_kinds": launchable_kinds(),
    }
    return render(request, "jobs/_project_jobs.html", context)


@login_required
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = selectors.job_get(user=request.user, job_id=job_id)
    context = {
        "job": job,
        "kind": JOB_KINDS.get(job.kind),
        "params_json": json.dumps(job.params, indent=2),
        "result_json": json.dumps(job.result, indent=2),
    }
    return render(request, "jobs/detail.html", context)


@login_required
def job_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """The progress bar partial the pages poll; answers 286 when the job has ended so htmx stops."""
    job = selectors.job_get(user=request.user, job_id=job_id)
    reload_when_done = request.GET.get("reload") == "1"
    context = {"job": job, "reload_when_done": reload_when_done, "show_stages": request.GET.get("stages") == "1"}
    response = render(request, "jobs/_progress.html", context)
    if job.is_finished and reload_when_done:
        # The job page shows the result and error too: reload it once, it then stops polling.
        response["HX-Refresh"] = "true"
        return response
    return stop_polling(response) if job.is_finished else response


@login_required
@require_POST
def job_launch(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.LAUNCH_JOB)
    kind = request.POST.get("kind", "smoke")
    params = {key: request.POST[key] for key in ("steps", "step_seconds") if request.POST.get(key)}
    try:
        job = services.job_launch(kind=kind, project=project, created_by=request.user, params=params)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("projects:detail", project_id=project.id)
    messages.success(request, f"Launched {JOB_KINDS[kind].label} job #{job.id}.")
    return redirect("jobs:detail", job_id=job.id)


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = selectors.job_get(user=request.user, job_id=job_id)
    authorize(request.user, Action.CANCEL_JOB)
    try:
        services.job_cancel(job=job, cancelled_by=request.user)
        messages.info(request, f"Cancel requested for job #{job.id}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("jobs:detail", job_id=job.id)
