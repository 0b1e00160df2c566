"""Pages for projects and the character roster (server-rendered, htmx where it helps)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError
from apps.core.permissions import Action, authorize
from apps.projects import selectors, services
from apps.projects.forms import CharacterForm, MemberForm, ProjectCreateForm, ProjectForm, ReferenceImageForm


def _form_error(form, exc: ApplicationError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    authorize(request.user, Action.VIEW_PROJECT)
    return render(request, "projects/list.html", {"projects": selectors.project_list(user=request.user)})


@login_required
def project_create(request: HttpRequest) -> HttpResponse:
    authorize(request.user, Action.CREATE_PROJECT)
    form = ProjectCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(
                created_by=request.user, name=form.cleaned_data["name"], description=form.cleaned_data["description"]
            )
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Created project “{project.name}”.")
            return redirect("projects:detail", project_id=project.id)
    return render(request, "projects/form.html", {"form": form, "title": "New project"})


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.VIEW_PROJECT)
    return render(
        request,
        "projects/detail.html",
        {
            "project": project,
            "characters": selectors.character_list(project=project),
            "members": selectors.project_member_list(project=project),
            "member_form": MemberForm(),
        },
    )


@login_required
def project_edit(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.EDIT_PROJECT)
    form = ProjectForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        try:
            services.project_update(project=project, **form.cleaned_data)
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Saved.")
            return redirect("projects:detail", project_id=project.id)
    return render(request, "projects/form.html", {"form": form, "title": f"Edit {project.name}", "project": project})


@login_required
@require_POST
def member_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.MANAGE_MEMBERS)
    form = MemberForm(request.POST)
    if form.is_valid():
        try:
            services.membership_add(project=project, username=form.cleaned_data["username"], added_by=request.user)
            messages.success(request, f"Added {form.cleaned_data['username']}.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
    return redirect("projects:detail", project_id=project.id)


@login_required
def character_create(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.EDIT_ROSTER)
    form = CharacterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            character = services.character_create(project=project, **form.cleaned_data)
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Added {character.name}. Now upload reference images.")
            return redirect("projects:character_edit", project_id=project.id, character_id=character.id)
    return render(request, "projects/character_form.html", {"form": form, "project": project, "character": None})


@login_required
def character_edit(request: HttpRequest, project_id: int, character_id: int) -> HttpResponse:
    project = selectors.project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.EDIT_ROSTER)
    character = selectors.character_get(project=project, character_id=character_id)
    form = CharacterForm(request.POST or None, instance=character)
    if request.method == "POST" and form.is_valid():
        try:
            services.character_update(character=character, **form.cleaned_data)
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Saved.")
            return redirect("projects:detail", project_id=project.id)
    return render(
        request,
        "projects/character_form.html",
        {"form": form, "project": project, "character": character, "upload_form": ReferenceImageForm()},
    )


@login_required
@require_POST
def character_delete(request: HttpRequest, project_id: int, character_id: int) -> HttpResponse:
    project = selectors.project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.EDIT_ROSTER)
    character = selectors.character_get(project=project, character_id=character_id)
    services.character_delete(character=character)
    messages.success(request, f"Removed {character.name}.")
    return redirect("projects:detail", project_id=project.id)


@login_required
@require_POST
def reference_upload(request: HttpRequest, project_id: int, character_id: int) -> HttpResponse:
    """Upload one or more reference images; each file is accepted or refused on its own."""
    project = selectors.project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.EDIT_ROSTER)
    character = selectors.character_get(project=project, character_id=character_id)
    form = ReferenceImageForm(request.POST, request.FILES)
    outcomes: list[tuple[str, bool, str]] = []
    if form.is_valid():
        for upload in form.cleaned_data["images"]:
            try:
                services.reference_image_add(character=character, upload=upload)
                outcomes.append((upload.name, True, "added"))
            except ApplicationError as exc:
                outcomes.append((upload.name, False, exc.message))
    else:
        outcomes.append(("", False, "Choose at least one image file."))
    character = selectors.character_get(project=project, character_id=character_id)
    context = {"project": project, "character": character, "outcomes": outcomes}
    if request.htmx:
        # 200 even when a file was refused: htmx swaps only 2xx, and the partial lists each outcome.
        return render(request, "projects/_references.html", context)
    for name, ok, text in outcomes:
        (messages.success if ok else messages.error)(request, f"{name}: {text}" if ok else text)
    return redirect("projects:character_edit", project_id=project.id, character_id=character.id)


@login_required
@require_POST
def reference_delete(request: HttpRequest, project_id: int, reference_id: int) -> HttpResponse:
    project = selectors.project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.EDIT_ROSTER)
    reference = selectors.reference_image_get(user=request.user, reference_id=reference_id)
    if reference.character.project_id != project.id:
        raise Http404("No such image.")
    character_id = reference.character_id
    services.reference_image_delete(reference=reference)
    return redirect("projects:character_edit", project_id=project.id, character_id=character_id)


@login_required
def reference_file(request: HttpRequest, reference_id: int) -> FileResponse:
    """Serve a reference image to members of its project only, with its true content type."""
    reference = selectors.reference_image_get(user=request.user, reference_id=reference_id)
    response = FileResponse(reference.image.open("rb"), content_type=reference.content_type)
    response["Content-Disposition"] = f'inline; filename="reference-{reference.id}.png"'
    response["Cache-Control"] = "private, max-age=3600"
    return response
