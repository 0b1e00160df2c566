"""Reviewer pages: the reviews of a project, the side-by-side frame (htmx), results, the lead's flags."""

import json
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.captioning.models import Caption, CaptionRun
from apps.core.errors import ApplicationError
from apps.core.pages import int_param
from apps.core.permissions import Action, authorize, can
from apps.evaluation.models import Comparison
from apps.modelhub.models import ModelVersion
from apps.projects.selectors import project_get
from apps.review import selectors, services
from apps.review.models import FIELDS, VOTE_FIELDS, CaptionFlagKind, ReviewFrame

FLAG_CHOICES = [(kind.value, kind.label) for kind in CaptionFlagKind if kind != CaptionFlagKind.CORRECTED]


class ReviewForm(forms.Form):
    comparison = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="From an evaluation")
    baseline = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="or baseline run")
    candidate = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="and candidate run")

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        comparisons = Comparison.objects.filter(project=project, job__status="succeeded").order_by("-id")
        self.fields["comparison"].choices = [("", "—")] + [(c.id, str(c)) for c in comparisons]
        runs = CaptionRun.objects.filter(project=project).order_by("-id")[:200]
        choices = [("", "—")] + [(r.id, f"#{r.id} {r.get_pipeline_display()} ({r.frame_count} frames)") for r in runs]
        self.fields["baseline"].choices = choices
        self.fields["candidate"].choices = choices


@login_required
def index(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    context = {
        "project": project,
        "reviews": selectors.review_list(project=project),
        "form": ReviewForm(project=project) if can(request.user, Action.MANAGE_REVIEWS) else None,
        "open_flags": len(selectors.flag_queue(project=project)) if can(request.user, Action.MANAGE_REVIEWS) else 0,
    }
    return render(request, "review/index.html", context)


@login_required
@require_POST
def create(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.MANAGE_REVIEWS)
    form = ReviewForm(request.POST, project=project)
    if not form.is_valid():
        messages.error(request, f"Check the form: {form.errors.as_text()}")
        return redirect("review:index", project_id=project.id)
    data = form.cleaned_data
    try:
        if data["comparison"]:
            comparison = Comparison.objects.get(project=project, id=data["comparison"])
            review = services.review_create_from_comparison(comparison=comparison, created_by=request.user)
        elif data["baseline"] and data["candidate"]:
            runs = CaptionRun.objects.filter(project=project)
            review = services.review_create(
                baseline=runs.get(id=data["baseline"]),
                candidate=runs.get(id=data["candidate"]),
                created_by=request.user,
            )
        else:
            raise ApplicationError("Pick an evaluation, or a baseline and a candidate caption run.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("review:index", project_id=project.id)
    messages.success(request, f"{review}: {review.frame_count} frames to review.")
    return redirect("review:compare", project_id=project.id, review_id=review.id)


def _compare_context(request: HttpRequest, project, review, position: int | None) -> dict:
    filters = selectors.FrameFilters.from_query(request.GET)
    blind = request.GET.get("mode", "blind") != "open"
    page = selectors.frame_page(review=review, reviewer=request.user, position=position, filters=filters, blind=blind)
    query = {**filters.as_query(), **({} if blind else {"mode": "open"})}
    shown = page["shown_choices"] if page else {}
    vote_rows = [
        {
            "field": field,
            "label": selectors.FIELD_LABELS[field],
            "options": [(value, shown.get(field) == value) for value in ("A", "same", "B")],
        }
        for field in VOTE_FIELDS
    ]
    return {
        "project": project,
        "review": review,
        "page": page,
        "blind": blind,
        "filters": filters,
        "query": urlencode(query),
        "query_open": urlencode({**filters.as_query(), "mode": "open"}),
        "query_blind": urlencode(filters.as_query()),
        "vote_rows": vote_rows,
        "sides": ("A", "B"),
        "flag_choices": FLAG_CHOICES,
        "tallies": selectors.review_tallies(review=review, reviewer=request.user),
    }


@login_required
def compare(request: HttpRequest, project_id: int, review_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.REVIEW_CAPTIONS)
    review = selectors.review_get(project=project, review_id=review_id)
    raw = request.GET.get("at")
    position = int_param(raw)
    context = _compare_context(request, project, review, position)
    if context["page"] is not None and position is not None:
        services.place_set(review=review, reviewer=request.user, position=context["page"]["frame"].position)
    template = "review/_frame.html" if request.htmx else "review/compare.html"
    return render(request, template, context)


def _choices_from_post(request: HttpRequest) -> dict[str, str]:
    return {field: request.POST.get(f"choice_{field}", "") for field in VOTE_FIELDS}


def _flags_from_post(request: HttpRequest) -> list[tuple[str, str]]:
    flags = []
    for value in request.POST.getlist("flag"):
        side, _, kind = value.partition(":")
        flags.append((side, kind))
    return flags


def _frame_of(review, position: int) -> ReviewFrame:
    return get_object_or_404(ReviewFrame.objects.select_related("review"), review=review, position=position)


def _after_write(request, project, review, position: int, advance: bool) -> HttpResponse:
    """The frame again (after a correction) or the next one in the queue (after a vote)."""
    context = _compare_context(request, project, review, position)
    page = context["page"]
    if advance and page is not None and page["next"] is not None:
        context = _compare_context(request, project, review, page["next"])
    at = context["page"]["frame"].position if context["page"] else 0
    services.place_set(review=review, reviewer=request.user, position=at)
    url = reverse("review:compare", args=[project.id, review.id])
    url = f"{url}?{context['query']}&at={at}" if context["query"] else f"{url}?at={at}"
    if request.htmx:
        response = render(request, "review/_frame.html", context)
        response["HX-Push-Url"] = url  # a reload shows this frame, not the one the page opened on
        return response
    return redirect(url)


@login_required
@require_POST
def vote(request: HttpRequest, project_id: int, review_id: int, position: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.REVIEW_CAPTIONS)
    review = selectors.review_get(project=project, review_id=review_id)
    frame = _frame_of(review, position)
    try:
        services.vote_record(
            frame=frame,
            reviewer=request.user,
            choices=_choices_from_post(request),
            comment=request.POST.get("comment", ""),
            flags=_flags_from_post(request),
        )
    except ApplicationError as exc:
        response = _after_write(request, project, review, position, advance=False)
        response["HX-Trigger"] = json.dumps({"review-error": exc.message})
        if not request.htmx:
            messages.error(request, exc.message)
        return response
    return _after_write(request, project, review, position, advance=True)


@login_required
@require_POST
def correct(request: HttpRequest, project_id: int, review_id: int, position: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.REVIEW_CAPTIONS)
    review = selectors.review_get(project=project, review_id=review_id)
    frame = _frame_of(review, position)
    side = request.POST.get("side", "")
    candidate_as = selectors.candidate_side(review.id, request.user.id, frame.asset_id)
    caption_id = request.POST.get("caption", "")
    if side in ("A", "B"):
        caption_id = frame.candidate_caption_id if side == candidate_as else frame.baseline_caption_id
    caption = get_object_or_404(Caption, id=caption_id, run__project=project)
    field = request.POST.get("field", "")
    value = request.POST.get("value", "")
    try:
        if field == "characters":
            fields = {"characters": _characters_from_text(value)}
        elif field in FIELDS:
            fields = {field: value.strip()}
        else:
            raise ApplicationError(f"Unknown caption field {field!r}.")
        services.caption_correct(
            caption=caption, fields=fields, author=request.user, review=review, note=request.POST.get("note", "")
        )
    except ApplicationError as exc:
        response = _after_write(request, project, review, position, advance=False)
        response["HX-Trigger"] = json.dumps({"review-error": exc.message})
        if not request.htmx:
            messages.error(request, exc.message)
        return response
    return _after_write(request, project, review, position, advance=False)


def _characters_from_text(text: str) -> list[dict]:
    """ "Name: description; Name: description" — the characters field as the page shows it."""
    mentions = []
    for part in text.split(";"):
        name, _, description = part.partition(":")
        if name.strip():
            mentions.append({"name": " ".join(name.split()), "description": description.strip()})
    return mentions


class PairwiseJudgeForm(forms.Form):
    judge = forms.TypedChoiceField(coerce=int)

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        versions = ModelVersion.objects.filter(project=project).order_by("role", "name")
        self.fields["judge"].choices = [(v.id, f"{v.name} ({v.get_role_display()})") for v in versions]


@login_required
def results(request: HttpRequest, project_id: int, review_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    review = selectors.review_get(project=project, review_id=review_id)
    context = {
        "project": project,
        "review": review,
        "results": selectors.review_results(review=review),
        "judge_form": PairwiseJudgeForm(project=project) if can(request.user, Action.RUN_MODELS) else None,
    }
    return render(request, "review/results.html", context)


@login_required
@require_POST
def pairwise(request: HttpRequest, project_id: int, review_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.RUN_MODELS)
    review = selectors.review_get(project=project, review_id=review_id)
    form = PairwiseJudgeForm(request.POST, project=project)
    if not form.is_valid():
        messages.error(request, f"Check the form: {form.errors.as_text()}")
        return redirect("review:results", project_id=project.id, review_id=review.id)
    judge = ModelVersion.objects.get(project=project, id=form.cleaned_data["judge"])
    job = services.pairwise_judge_start(review=review, judge=judge, created_by=request.user)
    messages.success(request, f"{judge.name} is comparing the pairs: job #{job.id}.")
    return redirect("jobs:detail", job_id=job.id)


@login_required
def flags(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.MANAGE_REVIEWS)
    context = {"project": project, "entries": selectors.flag_queue(project=project), "fields": FIELDS}
    return render(request, "review/flags.html", context)


@login_required
@require_POST
def resolve(request: HttpRequest, project_id: int, caption_id: int) -> HttpResponse:
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.MANAGE_REVIEWS)
    caption = get_object_or_404(Caption, id=caption_id, run__project=project)
    try:
        closed = services.caption_flags_resolve(
            caption=caption, lead=request.user, resolution=request.POST.get("resolution", "")
        )
        messages.success(request, f"Caption of frame {caption.asset_id}: {closed} flag(s) resolved.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("review:flags", project_id=project.id)
