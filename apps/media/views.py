"""Pages for footage: upload/ingest, the asset browser, asset detail, and permission-checked media."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import TooManyFilesSent
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from apps.core.errors import ApplicationError
from apps.core.permissions import Action, authorize
from apps.media import selectors, services
from apps.media.forms import AssetFilterForm, IngestForm
from apps.projects.selectors import project_get

MEDIA_VARIANTS = {"image": ("image", "image/jpeg", "jpg"), "thumb": ("thumbnail", "image/webp", "webp")}


@login_required
def asset_browser(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.VIEW_PROJECT)
    videos = selectors.video_list(project=project)
    form = AssetFilterForm(request.GET or None, videos=videos)
    filters = form.cleaned_data if form.is_valid() else {}
    assets, next_after = selectors.asset_page(
        project=project,
        video_id=filters.get("video"),
        t_from=filters.get("t_from"),
        t_to=filters.get("t_to"),
        after=filters.get("after"),
    )
    query = request.GET.copy()
    query.pop("after", None)
    context = {
        "project": project,
        "form": form,
        "assets": assets,
        "videos": videos,
        "total": selectors.asset_count(project=project),
        "next_after": next_after,
        "filter_query": query.urlencode(),
    }
    template = "media/_asset_page.html" if request.htmx else "media/browser.html"
    return render(request, template, context)


@login_required
def project_footage(request: HttpRequest, project_id: int) -> HttpResponse:
    """The project page's footage panel: how much there is, its videos, and the stages' pages."""
    project = project_get(user=request.user, project_id=project_id)
    context = {
        "project": project,
        "asset_total": selectors.asset_count(project=project),
        "videos": selectors.video_list(project=project),
    }
    return render(request, "media/_project_footage.html", context)


@login_required
def asset_detail(request: HttpRequest, project_id: int, asset_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    asset = selectors.asset_get(user=request.user, asset_id=asset_id, project=project)
    context = {
        "project": project,
        "asset": asset,
    }
    return render(request, "media/detail.html", context)


@login_required
def asset_file(request: HttpRequest, asset_id: int, variant: str) -> FileResponse:
    """Members only; the stored type, never sniffed; inline but never HTML."""
    asset = selectors.asset_get(user=request.user, asset_id=asset_id)
    field_name, content_type, extension = MEDIA_VARIANTS[variant]
    response = FileResponse(getattr(asset, field_name).open("rb"), content_type=content_type)
    response["Content-Disposition"] = f'inline; filename="asset-{asset.id}.{extension}"'
    response["Cache-Control"] = "private, max-age=86400"
    return response


@csrf_exempt  # checked below, after the multipart body was parsed under our own limits
@login_required
def ingest_upload(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.INGEST_MEDIA)
    if request.method == "POST":
        try:
            request.POST, request.FILES  # noqa: B018 — parse now to catch "too many files" with a clear message
        except TooManyFilesSent:
            return HttpResponse(
                f"Too many files in one upload; the limit is {settings.DATA_UPLOAD_MAX_NUMBER_FILES}.",
                status=400,
                content_type="text/plain",
            )
    return csrf_protect(_ingest_upload)(request, project)


def _ingest_upload(request: HttpRequest, project) -> HttpResponse:
    form = IngestForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        oversize = [
            {"name": services.display_name(name), "reason": f"Over the {settings.INGEST_MAX_FILE_BYTES:,}-byte limit."}
            for name in getattr(request, "oversize_uploads", [])
        ]
        try:
            job = services.ingest_start(
                project=project,
                uploads=form.cleaned_data["files"],
                created_by=request.user,
                sample_every_seconds=form.cleaned_data["sample_every_seconds"] or 1.0,
                refused=oversize,
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Uploaded {len(job.params['files'])} file(s); ingesting in job #{job.id}.")
            return redirect("jobs:detail", job_id=job.id)
    return render(request, "media/ingest.html", {"project": project, "form": form})
