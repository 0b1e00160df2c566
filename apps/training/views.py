"""Fine-tuning pages: the launch form (paper defaults prefilled) and a live run page."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError
from apps.core.permissions import Action, authorize
from apps.projects.selectors import project_get
from apps.training import selectors, services


class TrainingLaunchForm(forms.Form):
    base_version = forms.TypedChoiceField(coerce=int, label="Base detector")
    labeling_project = forms.TypedChoiceField(coerce=int, label="Gold labels from")
    epochs = forms.IntegerField(min_value=1, max_value=1000)
    learning_rate = forms.FloatField(min_value=1e-7, max_value=0.5, label="Learning rate")
    rank = forms.IntegerField(min_value=1, max_value=1024, label="LoRA rank")
    alpha = forms.IntegerField(min_value=1, max_value=4096, label="LoRA alpha")
    dropout = forms.FloatField(min_value=0.0, max_value=0.9, label="LoRA dropout")
    batch_size = forms.IntegerField(min_value=1, max_value=512, label="Batch size")
    grad_accumulation = forms.IntegerField(min_value=1, max_value=512, label="Gradient accumulation")
    seed = forms.IntegerField(min_value=0, initial=0, help_text="the 80/20 split and the initialisation")
    train_vision = forms.BooleanField(required=False, label="Also train the vision tower")
    merge = forms.BooleanField(required=False, label="Merge into the base (checked equivalent)")

    def __init__(self, *args, detectors, sources, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base_version"].choices = [(v.id, v.name) for v in detectors]
        self.fields["labeling_project"].choices = [(lp.id, str(lp.gold_set)) for lp in sources]

    HYPERPARAMETERS = ("epochs", "learning_rate", "rank", "alpha", "dropout", "batch_size", "grad_accumulation", "seed")


def _form(project, data=None) -> TrainingLaunchForm:
    detectors = selectors.trainable_detectors(project=project).order_by("-is_default", "name")
    initial = {"seed": 0}
    if detectors:
        initial.update(services.sft_defaults(detectors[0]))
    return TrainingLaunchForm(
        data, initial=initial, detectors=detectors, sources=selectors.labelled_sources(project=project)
    )


@login_required
def index(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    context = {"project": project, "runs": selectors.training_run_list(project=project)[:50], "form": _form(project)}
    return render(request, "training/index.html", context)


@login_required
@require_POST
def launch(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.RUN_MODELS)
    form = _form(project, request.POST)
    if not form.is_valid():
        messages.error(request, f"Check the form: {form.errors.as_text()}")
        return redirect("training:index", project_id=project.id)
    data = form.cleaned_data
    params = {key: data[key] for key in TrainingLaunchForm.HYPERPARAMETERS}
    params["train_vision"] = data["train_vision"]
    try:
        run = services.training_run_start(
            base_version=selectors.trainable_detectors(project=project).get(id=data["base_version"]),
            labeling_project=selectors.labelled_sources(project=project).get(id=data["labeling_project"]),
            params=params,
            merge=data["merge"],
            created_by=request.user,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("training:index", project_id=project.id)
    return redirect("training:detail", project_id=project.id, run_id=run.id)


@login_required
def detail(request: HttpRequest, project_id: int, run_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    run = selectors.training_run_get(project=project, run_id=run_id)
    context = {
        "project": project,
        "run": run,
        "before_after": selectors.before_after(run),
        "curves": selectors.training_curves(run),
    }
    return render(request, "training/detail.html", context)


@login_required
def curves(request: HttpRequest, project_id: int, run_id: int) -> JsonResponse:
    """Polled by the run page while it trains: the curves grow without a reload."""
    project = project_get(user=request.user, project_id=project_id)
    return JsonResponse(selectors.training_curves(selectors.training_run_get(project=project, run_id=run_id)))
