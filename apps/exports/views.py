"""Export pages: the project's exports, the form with a live preview (htmx), one export, its download."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.captioning.models import CaptionRun
from apps.core.errors import ApplicationError
from apps.core.permissions import Action, authorize, can
from apps.exports import selectors, services
from apps.exports.models import ExportFormat, ExportSource
from apps.projects.selectors import project_get

FILTER_FIELDS = ("min_judge_score", "require_adherence", "exclude_flagged", "only_reviewed", "only_with_characters")


# The page's preview counts and lints the first PREVIEW_FRAMES frames, so that it answers as the
# form changes whatever the project's size; the export job counts and lints every frame.
PREVIEW_FRAMES = 100


class ExportForm(forms.Form):
    source = forms.ChoiceField(choices=ExportSource.choices, initial=ExportSource.BEST)
    caption_run = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="caption run")
    format = forms.ChoiceField(choices=ExportFormat.choices, initial=ExportFormat.HF)
    template = forms.CharField(
        max_length=500,
        label="dense caption template",
        widget=forms.TextInput(attrs={"size": 90, "spellcheck": "false"}),
    )
    shard_size = forms.IntegerField(min_value=1, max_value=services.MAX_SHARD_SIZE, initial=1000, label="shard size")
    min_judge_score = forms.FloatField(min_value=1, max_value=10, required=False, label="judge score at least")
    require_adherence = forms.BooleanField(required=False, label="structure adherence required")
    exclude_flagged = forms.BooleanField(required=False, label="leave out flagged captions")
    only_reviewed = forms.BooleanField(required=False, label="only reviewed captions")
    only_with_characters = forms.BooleanField(required=False, label="only frames with characters")

    def __init__(self, *args, project, **kwargs):
        from workers.exports.dense import DEFAULT_TEMPLATE

        super().__init__(*args, **kwargs)
        runs = CaptionRun.objects.filter(project=project).order_by("-id")[:200]
        self.fields["caption_run"].choices = [("", "—")] + [
            (run.id, f"#{run.id} {run.get_pipeline_display()} ({run.frame_count} frames)") for run in runs
        ]
        self.fields["template"].initial = DEFAULT_TEMPLATE
        self.project = project

    def clean(self):
        data = super().clean()
        if data.get("source") == ExportSource.RUN and not data.get("caption_run"):
            self.add_error("caption_run", "Pick the caption run to export.")
        return data

    def run(self) -> CaptionRun | None:
        run_id = self.cleaned_data.get("caption_run")
        if self.cleaned_data.get("source") != ExportSource.RUN or not run_id:
            return None
        return CaptionRun.objects.filter(project=self.project, id=run_id).first()

    def filters(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in FILTER_FIELDS}


@login_required
def index(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.EXPORT_DATASET)
    context = {
        "project": project,
        "exports": selectors.export_list(project=project)[:100],
        "form": ExportForm(project=project),
    }
    return render(request, "exports/index.html", context)


@login_required
def preview(request: HttpRequest, project_id: int) -> HttpResponse:
    """How many frames each filter keeps, and the lint of what the export would write (htmx)."""
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.EXPORT_DATASET)
    form = ExportForm(request.GET, project=project)
    context = {"project": project, "form": form, "preview": None}
    if form.is_valid():
        try:
            filters = selectors.ExportFilters.from_mapping(form.filters())
            preview = selectors.export_preview(
                project=project,
                source=form.cleaned_data["source"],
                filters=filters,
                caption_run=form.run(),
                template=form.cleaned_data["template"],
                limit=PREVIEW_FRAMES,
            )
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            context["preview"] = preview
            context["filter_rows"] = [
                (selectors.ExportFilters.LABELS[name], preview.kept_by[name]) for name in filters.active()
            ]
    return render(request, "exports/_preview.html", context)


@login_required
@require_POST
def create(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.EXPORT_DATASET)
    form = ExportForm(request.POST, project=project)
    if not form.is_valid():
        messages.error(request, f"Check the form: {form.errors.as_text()}")
        return redirect("exports:index", project_id=project.id)
    data = form.cleaned_data
    try:
        export = services.export_start(
            project=project,
            created_by=request.user,
            format=data["format"],
            source=data["source"],
            caption_run=form.run(),
            template=data["template"],
            shard_size=data["shard_size"],
            filters=form.filters(),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("exports:index", project_id=project.id)
    messages.success(request, f"{export} started.")
    return redirect("exports:detail", project_id=project.id, export_id=export.id)


@login_required
def detail(request: HttpRequest, project_id: int, export_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.EXPORT_DATASET)
    export = selectors.export_get(project=project, export_id=export_id)
    context = {
        "project": project,
        "export": export,
        "active_filters": export.active_filters,
        "can_download": bool(export.archive) and can(request.user, Action.EXPORT_DATASET),
    }
    return render(request, "exports/detail.html", context)


@login_required
def download(request: HttpRequest, project_id: int, export_id: int) -> FileResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.EXPORT_DATASET)
    export = selectors.export_get(project=project, export_id=export_id)
    if not export.archive:
        raise Http404("This export has no archive yet.")
    try:
        handle = export.archive.open("rb")
    except FileNotFoundError:
        raise Http404("The export's archive is no longer in storage.") from None
    services.export_downloaded(export=export, by=request.user)
    return FileResponse(handle, as_attachment=True, filename=export.archive.name.rsplit("/", 1)[-1])
