"""Curation pages: runs overview, the interactive projection, gold sets."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError
from apps.core.pages import after_param, int_param, keyset_page
from apps.core.permissions import Action, authorize
from apps.curation import selectors, services
from apps.curation.forms import ClusteringForm, GoldSampleForm
from apps.media.selectors import asset_get
from apps.projects.selectors import project_get

GOLD_PAGE_ITEMS = 120

ASSET_PLACEHOLDER = 987654321  # an id no asset has: replaced client-side


@login_required
def overview(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    context = {
        "project": project,
        "embedding_runs": selectors.embedding_run_list(project=project)[:10],
        "clustering_runs": selectors.clustering_run_list(project=project)[:20],
        "gold_sets": selectors.gold_set_list(project=project),
        "cluster_form": ClusteringForm(),
    }
    return render(request, "curation/overview.html", context)


def _launched(request: HttpRequest, start) -> HttpResponse | None:
    try:
        job = start()
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return None
    messages.success(request, f"Launched job #{job.id}.")
    return redirect("jobs:detail", job_id=job.id)


@login_required
@require_POST
def embed_launch(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.CURATE)
    response = _launched(request, lambda: services.embedding_start(project=project, created_by=request.user))
    return response or redirect("curation:overview", project_id=project.id)


@login_required
@require_POST
def cluster_launch(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.CURATE)
    form = ClusteringForm(request.POST)
    if form.is_valid():
        params = form.cleaned_data
        response = _launched(
            request, lambda: services.clustering_start(project=project, created_by=request.user, params=params)
        )
        if response:
            return response
    else:
        messages.error(request, f"Check the clustering parameters: {form.errors.as_text()}")
    return redirect("curation:overview", project_id=project.id)


@login_required
def clustering_detail(request: HttpRequest, project_id: int, clustering_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    clustering = selectors.clustering_run_get(project=project, clustering_id=clustering_id)
    gold_set = selectors.gold_set_latest_for(clustering=clustering)
    clusters, cluster_count = selectors.cluster_table(clustering=clustering, gold_set=gold_set)
    scatter = {
        # The points come as binary arrays from their own URL (fetched once, cached by the browser);
        # the page carries only what changes: the gold picks.
        "points_url": reverse("curation:clustering_points", args=[project.id, clustering.id]),
        "gold": list(gold_set.items.values_list("asset_id", flat=True)) if gold_set else [],
        # URL templates for the script: it puts an asset id where the placeholder is.
        "asset_url": reverse("media:detail", args=[project.id, ASSET_PLACEHOLDER]),
        "thumb_url": reverse("media:thumb", args=[ASSET_PLACEHOLDER]),
    }
    context = {
        "project": project,
        "clustering": clustering,
        "gold_set": gold_set,
        "scatter": scatter,
        "clusters": clusters,
        "cluster_count": cluster_count,
        "sample_form": GoldSampleForm(),
    }
    return render(request, "curation/clustering.html", context)


@login_required
def clustering_points(request: HttpRequest, project_id: int, clustering_id: int) -> HttpResponse:
    """The projection's points as binary arrays (selectors.projection_arrays has the layout)."""
    project = project_get(user=request.user, project_id=project_id)
    clustering = selectors.clustering_run_get(project=project, clustering_id=clustering_id)
    response = HttpResponse(selectors.projection_arrays(clustering=clustering), content_type="application/octet-stream")
    response["Cache-Control"] = "private, max-age=86400"  # a clustering's points never change
    return response


@login_required
@require_POST
def gold_sample_launch(request: HttpRequest, project_id: int, clustering_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.CURATE)
    clustering = selectors.clustering_run_get(project=project, clustering_id=clustering_id)
    form = GoldSampleForm(request.POST)
    if form.is_valid():
        params = form.cleaned_data
        response = _launched(
            request,
            lambda: services.gold_sample_start(clustering=clustering, created_by=request.user, params=params),
        )
        if response:
            return response
    else:
        messages.error(request, f"Check the sampling parameters: {form.errors.as_text()}")
    return redirect("curation:clustering", project_id=project.id, clustering_id=clustering.id)


@login_required
def gold_set_detail(request: HttpRequest, project_id: int, gold_set_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    gold_set = selectors.gold_set_get(project=project, gold_set_id=gold_set_id)
    # A keyset page at a time, the next loaded on scroll (htmx): a gold set can hold thousands.
    items, next_after = keyset_page(
        selectors.gold_items(gold_set=gold_set), after_param(request.GET.get("after")), GOLD_PAGE_ITEMS
    )
    context = {
        "project": project,
        "gold_set": gold_set,
        "items": items,
        "next_after": next_after,
        "item_count": gold_set.items.count(),
    }
    return render(request, "curation/_gold_items.html" if request.htmx else "curation/gold_set.html", context)


@login_required
@require_POST
def gold_set_edit(request: HttpRequest, project_id: int, gold_set_id: int) -> HttpResponse:
    """Lead edits: add an asset by id, remove an item, or freeze the set."""
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.CURATE)
    gold_set = selectors.gold_set_get(project=project, gold_set_id=gold_set_id)
    action = request.POST.get("action")
    try:
        if action == "add":
            asset_id = int_param(request.POST.get("asset_id")) or 0
            asset = asset_get(user=request.user, asset_id=asset_id, project=project)
            services.gold_item_add(gold_set=gold_set, asset=asset, added_by=request.user)
            messages.success(request, f"Added {asset} to {gold_set}.")
        elif action == "remove":
            services.gold_item_remove(gold_set=gold_set, item_id=int_param(request.POST.get("item_id")) or 0)
            messages.success(request, "Removed.")
        elif action == "freeze":
            services.gold_set_freeze(gold_set=gold_set)
            messages.success(request, f"{gold_set} is frozen.")
        else:
            messages.error(request, "Unknown action.")
    except (ApplicationError, ValueError) as exc:
        messages.error(request, getattr(exc, "message", "Bad input."))
    return redirect("curation:gold_set", project_id=project.id, gold_set_id=gold_set.id)


@login_required
def asset_gold(request: HttpRequest, project_id: int, asset_id: int) -> HttpResponse:
    """The gold sets a frame belongs to, and a lead's button to add it to the newest draft: a panel
    of the frame's page (media/detail.html loads it)."""
    project = project_get(user=request.user, project_id=project_id)
    asset = asset_get(user=request.user, asset_id=asset_id, project=project)
    context = {
        "project": project,
        "asset": asset,
        "gold_memberships": selectors.asset_gold_memberships(asset=asset),
        "draft_gold_sets": selectors.gold_set_drafts(project=project),
    }
    return render(request, "curation/_asset_gold.html", context)
