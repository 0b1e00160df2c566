"""Labelling pages (leads push and resolve; everyone sees progress), the webhook, signed images."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HTMX_STOP_POLLING

from apps.captioning.models import DetectionRun
from apps.core.errors import ApplicationError
from apps.core.pages import int_param
from apps.core.permissions import Action, authorize
from apps.curation.models import GoldSet, GoldSetStatus
from apps.labeling import selectors, services
from apps.labeling.client import LabelStudioError
from apps.labeling.links import file_link_parse
from apps.media.models import Asset
from apps.media.views import MEDIA_VARIANTS
from apps.projects.models import ReferenceImage
from apps.projects.selectors import project_get


class LabelingStartForm(forms.Form):
    gold_set = forms.TypedChoiceField(coerce=int, label="Frozen gold set")
    detection_run = forms.TypedChoiceField(
        coerce=int,
        required=False,
        empty_value=None,
        label="Pre-annotate from",
        help_text="a detection run over the gold set",
    )
    control_fraction = forms.FloatField(
        min_value=0.0,
        max_value=0.9,
        initial=0.1,
        label="Control slice",
        help_text="share of frames shown without pre-annotation, to measure anchoring",
    )

    def __init__(self, *args, gold_sets, detection_runs, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gold_set"].choices = [(g.id, str(g)) for g in gold_sets]
        self.fields["detection_run"].choices = [("", "none (no pre-annotation)")] + [
            (run.id, f"#{run.id} · {run.model_version}") for run in detection_runs
        ]


def _start_form(project, data=None) -> LabelingStartForm:
    gold_sets = GoldSet.objects.filter(project=project, status=GoldSetStatus.FROZEN, labeling_project__isnull=True)
    runs = DetectionRun.objects.filter(project=project, gold_set__isnull=False).select_related("model_version")
    return LabelingStartForm(data, gold_sets=gold_sets.order_by("-version"), detection_runs=runs.order_by("-id")[:30])


@login_required
def index(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    context = {
        "project": project,
        "labeling_projects": selectors.labeling_project_list(project=project),
        "form": _start_form(project),
        "configured": bool(settings.LABEL_STUDIO_URL and settings.LABEL_STUDIO_TOKEN),
        "members": [(user, selectors.labelstudio_account_of(user)) for user in selectors.labelling_members(project)],
    }
    return render(request, "labeling/index.html", context)


@login_required
@require_POST
def accounts(request: HttpRequest, project_id: int) -> HttpResponse:
    """Make Label Studio accounts for the labelling members who have none; initial passwords shown once."""
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.MANAGE_LABELING)
    try:
        outcomes = services.labeling_member_accounts_ensure(project=project, created_by=request.user)
    except LabelStudioError as exc:
        messages.error(request, str(exc))
        return redirect("labeling:index", project_id=project.id)
    response = render(
        request,
        "labeling/accounts.html",
        {"project": project, "outcomes": outcomes, "public_url": settings.LABEL_STUDIO_PUBLIC_URL},
    )
    response["Cache-Control"] = "no-store"  # the initial passwords are on this page, once
    return response


@login_required
@require_POST
def start(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.MANAGE_LABELING)
    form = _start_form(project, request.POST)
    if not form.is_valid():
        messages.error(request, f"Check the form: {form.errors.as_text()}")
        return redirect("labeling:index", project_id=project.id)
    run_id = form.cleaned_data["detection_run"]
    try:
        labeling_project = services.labeling_project_start(
            gold_set=get_object_or_404(GoldSet, project=project, id=form.cleaned_data["gold_set"]),
            detection_run=get_object_or_404(DetectionRun, project=project, id=run_id) if run_id else None,
            control_fraction=form.cleaned_data["control_fraction"],
            created_by=request.user,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("labeling:index", project_id=project.id)
    return redirect("labeling:detail", project_id=project.id, labeling_project_id=labeling_project.id)


@login_required
def detail(request: HttpRequest, project_id: int, labeling_project_id: int) -> HttpResponse:
    """The labelling page; its live part polls (?fragment=live&v=<summary key>) only while something
    is changing: an unchanged poll answers 204 without computing anything, and when nothing is
    pending it answers 286, which stops htmx polling until the page is refreshed."""
    project = project_get(user=request.user, project_id=project_id)
    labeling_project = selectors.labeling_project_get(project=project, labeling_project_id=labeling_project_id)
    key = selectors.labeling_summary_key(labeling_project)
    live = selectors.labeling_live(labeling_project)
    fragment = bool(request.htmx) and request.GET.get("fragment") == "live"
    if fragment and live and request.GET.get("v") == key.key:
        return HttpResponse(status=204)
    summary = selectors.labeling_summary(labeling_project, key)
    distribution = summary["distribution"]
    context = {
        "project": project,
        "labeling_project": labeling_project,
        "queue_url": selectors.queue_url(labeling_project, settings.LABEL_STUDIO_PUBLIC_URL),
        "my_account": selectors.labelstudio_account_of(request.user),
        "summary": summary,
        "summary_key": key.key,
        "live": live,
        "distribution_data": {"names": [n for n, _ in distribution], "counts": [c for _, c in distribution]},
        "roster": key.roster,
    }
    if fragment:
        response = render(request, "labeling/_live.html", context)
        if not live:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "labeling/detail.html", context)


@login_required
@require_POST
def sync(request: HttpRequest, project_id: int, labeling_project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.MANAGE_LABELING)
    labeling_project = selectors.labeling_project_get(project=project, labeling_project_id=labeling_project_id)
    try:
        if request.POST.get("what") == "push":
            services.labeling_push_retry(labeling_project=labeling_project, created_by=request.user)
            messages.success(request, "The push was queued again; tasks already in Label Studio are kept.")
        else:
            job = services.labeling_sync_start(labeling_project=labeling_project, created_by=request.user)
            messages.success(request, f"Sync queued as job #{job.id}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("labeling:detail", project_id=project.id, labeling_project_id=labeling_project.id)


@login_required
@require_POST
def resolve(request: HttpRequest, project_id: int, labeling_project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.MANAGE_LABELING)
    labeling_project = selectors.labeling_project_get(project=project, labeling_project_id=labeling_project_id)
    try:
        asset = get_object_or_404(Asset, project=project, id=int_param(request.POST.get("asset_id")) or 0)
        services.gold_resolution_set(
            labeling_project=labeling_project,
            asset=asset,
            names=request.POST.getlist("names"),
            resolved_by=request.user,
        )
        messages.success(request, f"Frame {asset.id} resolved.")
    except (ApplicationError, ValueError) as exc:
        messages.error(request, getattr(exc, "message", "Bad input."))
    return redirect("labeling:detail", project_id=project.id, labeling_project_id=labeling_project.id)


@login_required
@require_GET
def health(request: HttpRequest, project_id: int) -> HttpResponse:
    """A small fragment for the project page: Label Studio's health as the worker last saw it.

    Never asks Label Studio (a slow or dead Label Studio must not hold a web request); a missing
    or old reading asks the cpu worker for a new one.
    """
    project_get(user=request.user, project_id=project_id)
    reading = selectors.labelstudio_health()
    if reading is None or not reading["fresh"]:
        services.labelstudio_health_request()
    return render(
        request,
        "labeling/_health.html",
        {"reading": reading, "public_url": settings.LABEL_STUDIO_PUBLIC_URL},
    )


@csrf_exempt  # Label Studio authenticates with the shared secret header, not a session
@require_POST
def webhook(request: HttpRequest, labeling_project_id: int) -> JsonResponse:
    secret = request.headers.get(settings.LABEL_STUDIO_WEBHOOK_HEADER, "")
    outcome = services.webhook_receive(labeling_project_id=labeling_project_id, secret=secret, body=request.body)
    return JsonResponse({"detail": outcome.detail, "annotations": outcome.annotation_ids}, status=outcome.status)


@require_GET
def file(request: HttpRequest, token: str) -> FileResponse:
    """An image for Label Studio's viewer: the signed link is the permission (no session)."""
    try:
        link = file_link_parse(token)
    except signing.BadSignature as exc:
        raise Http404("This image link is invalid or has expired.") from exc
    if link.kind == "asset":
        asset = get_object_or_404(Asset, id=link.object_id)
        field_name, content_type, _ = MEDIA_VARIANTS[link.variant]
        stored = getattr(asset, field_name)
    else:  # references are small: one file serves as image and thumbnail
        reference = get_object_or_404(ReferenceImage, id=link.object_id)
        stored, content_type = reference.image, reference.content_type
    response = FileResponse(stored.open("rb"), content_type=content_type)
    public = settings.LABEL_STUDIO_PUBLIC_URL
    if public:
        origin = "/".join(public.split("/")[:3])
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
