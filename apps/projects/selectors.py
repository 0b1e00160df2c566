"""Reads for projects: every lookup is scoped to the projects the user belongs to."""

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404

from apps.core.pages import MAX_DB_INT
from apps.core.permissions import user_role
from apps.projects.models import Character, Project, ReferenceImage


def project_list(*, user: User | AnonymousUser) -> QuerySet[Project]:
    # Every project-scoped read goes through here: no role (e.g. a removed group) means no projects.
    if not user.is_authenticated or user_role(user) is None:
        return Project.objects.none()
    projects = Project.objects.all() if user.is_superuser else Project.objects.filter(memberships__user=user)
    return projects.annotate(character_count=Count("characters", distinct=True)).order_by("name", "id")


def project_get(*, user: User | AnonymousUser, project_id: int) -> Project:
    """The project, or 404 when it does not exist *or the user is not a member* (no existence leak)."""
    project = project_list(user=user).filter(id=project_id).first()
    if project is None:
        raise Http404("No such project.")
    return project


def character_list(*, project: Project) -> QuerySet[Character]:
    return project.characters.prefetch_related(
        Prefetch("references", queryset=ReferenceImage.objects.order_by("id"))
    ).order_by("name", "id")


def roster_as_models_see_it(*, project: Project) -> list[list]:
    """Names, aliases, descriptions and reference images, in prompt order: what a detection or
    caption prompt is built from, so a run of another roster is another run."""
    return [
        [character.name, list(character.aliases), character.description, [ref.id for ref in character.references.all()]]
        for character in character_list(project=project)
    ]


def character_get(*, project: Project, character_id: int) -> Character:
    character = character_list(project=project).filter(id=character_id).first()
    if character is None:
        raise Http404("No such character.")
    return character


def reference_image_get(*, user: User | AnonymousUser, reference_id: int) -> ReferenceImage:
    reference = (
        ReferenceImage.objects.select_related("character__project")
        .filter(id=reference_id, character__project__in=project_list(user=user))
        .first()
    )
    if reference is None:
        raise Http404("No such image.")
    return reference


def project_member_list(*, project: Project) -> QuerySet[User]:
    return User.objects.filter(memberships__project=project).prefetch_related("groups").order_by("username")


def project_by_id_or_name(value: str) -> Project | None:
    """For management commands: `12` or `"Demo world"` (no membership check: a shell is trusted)."""
    if value.isdigit():
        return Project.objects.filter(id=int(value)).first() if int(value) <= MAX_DB_INT else None
    return Project.objects.filter(name=value).first()
