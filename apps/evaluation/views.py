"""Evaluation pages: eval sets, launching a comparison, the report with its downloads, drill-down."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError
from apps.core.permissions import Action, authorize
from apps.evaluation import exports, selectors, services
from apps.evaluation.models import EvalSet
from apps.modelhub.models import ModelRole, ModelVersion
from apps.projects.selectors import project_get


class EvalSetForm(forms.Form):
    size = forms.IntegerField(min_value=1, max_value=100_000, initial=300, label="Frames")
    seed = forms.IntegerField(min_value=0, initial=0)
    name = forms.CharField(max_length=200, required=False)


class ComparisonForm(forms.Form):
    eval_set = forms.TypedChoiceField(coerce=int, label="Eval set")
    captioner = forms.TypedChoiceField(coerce=int)
    detectors = forms.TypedMultipleChoiceField(coerce=int, help_text="one pipeline each, e.g. base and fine-tuned")
    judge = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Judge")

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        versions = ModelVersion.objects.filter(project=project)
        self.fields["eval_set"].choices = [(e.id, str(e)) for e in EvalSet.objects.filter(project=project)]
        self.fields["captioner"].choices = [(v.id, v.name) for v in versions.filter(role=ModelRole.CAPTIONER)]
        detectors = versions.filter(role=ModelRole.DETECTOR).order_by("-is_default", "name")
        self.fields["detectors"].choices = [(v.id, v.name) for v in detectors]
        self.fields["judge"].choices = [("", "none (no judge scores)")] + [
            (v.id, f"{v.name} ({v.get_role_display()})") for v in versions
        ]
        self.fields["detectors"].initial = [v.id for v in detectors.filter(is_default=True)] + [
            v.id for v in detectors.filter(source="sft").order_by("-id")[:1]
        ]


@login_required
def index(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    context = {
        "project": project,
        "eval_sets": EvalSet.objects.filter(project=project),
        "comparisons": selectors.comparison_list(project=project),
        "eval_set_form": EvalSetForm(),
        "comparison_form": ComparisonForm(project=project),
    }
    return render(request, "evaluation/index.html", context)


@login_required
@require_POST
def eval_set_create(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.RUN_MODELS)
    form = EvalSetForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Check the form: {form.errors.as_text()}")
        return redirect("evaluation:index", project_id=project.id)
    try:
        eval_set = services.eval_set_create(project=project, created_by=request.user, **form.cleaned_data)
        messages.success(
            request, f"{eval_set}: sampled outside every gold set ({eval_set.excluded_gold} gold frames left out)."
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("evaluation:index", project_id=project.id)


@login_required
@require_POST
def comparison_start(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.RUN_MODELS)
    form = ComparisonForm(request.POST, project=project)
    if not form.is_valid():
        messages.error(request, f"Check the form: {form.errors.as_text()}")
        return redirect("evaluation:index", project_id=project.id)
    data = form.cleaned_data
    versions = ModelVersion.objects.filter(project=project)
    try:
        comparison = services.comparison_start(
            eval_set=EvalSet.objects.get(project=project, id=data["eval_set"]),
            captioner=versions.get(id=data["captioner"]),
            detectors=[versions.get(id=i) for i in data["detectors"]],
            judge=versions.get(id=data["judge"]) if data["judge"] else None,
            created_by=request.user,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("evaluation:index", project_id=project.id)
    return redirect("evaluation:detail", project_id=project.id, comparison_id=comparison.id)


@login_required
def detail(request: HttpRequest, project_id: int, comparison_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    comparison = selectors.comparison_get(project=project, comparison_id=comparison_id)
    context = {"project": project, "comparison": comparison, **selectors.report_context(comparison)}
    return render(request, "evaluation/detail.html", context)


@login_required
def download(request: HttpRequest, project_id: int, comparison_id: int, fmt: str) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    comparison = selectors.comparison_get(project=project, comparison_id=comparison_id)
    if not comparison.report:
        raise Http404("The report is not ready yet.")
    name = f"vivecaption-comparison-{comparison.id}"
    if fmt == "json":
        response = StreamingHttpResponse(exports.report_json_chunks(comparison), content_type="application/json")
    elif fmt == "csv":
        response = StreamingHttpResponse(exports.report_csv_chunks(comparison), content_type="text/csv; charset=utf-8")
    elif fmt == "html":
        context = {
            "project": project,
            "comparison": comparison,
            "standalone": True,
            **selectors.report_context(comparison),
        }
        response = HttpResponse(render_to_string("evaluation/report_file.html", context), content_type="text/html")
    else:
        raise Http404("Unknown format.")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@login_required
def frames(request: HttpRequest, project_id: int, comparison_id: int) -> HttpResponse:
    """The frames behind a number: a detector's or a pipeline's captions' frames of the gold test
    split, optionally one character's errors."""
    project = project_get(user=request.user, project_id=project_id)
    comparison = selectors.comparison_get(project=project, comparison_id=comparison_id)
    rows, title = selectors.drill_down(
        comparison,
        request.GET.get("detector", ""),
        request.GET.get("character", ""),
        request.GET.get("kind", "all"),
        captions=request.GET.get("captions", ""),
    )
    return render(
        request, "evaluation/frames.html", {"project": project, "comparison": comparison, "rows": rows, "title": title}
    )
