"""Writes for projects, memberships and the character roster."""

import uuid

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError
from apps.projects.models import Character, Membership, Project, ReferenceImage
from apps.projects.signals import project_created
from workers.media.images import ImageLimits, ImageRejected, decode_image, encode_png


@transaction.atomic
def project_create(*, name: str, description: str = "", created_by: User) -> Project:
    name = name.strip()
    if not name:
        raise ApplicationError("A project needs a name.", field="name")
    project = Project.objects.create(name=name, description=description, created_by=created_by)
    Membership.objects.create(project=project, user=created_by)
    project_created.send(sender=Project, project=project)  # e.g. the model hub's default models
    return project


@transaction.atomic
def project_update(
    *,
    project: Project,
    name: str | None = None,
    description: str | None = None,
    clip_model_name: str | None = None,
    clip_pretrained: str | None = None,
) -> Project:
    """Edit a project. A CLIP model of its own (name + pretrained tag or local checkpoint path)
    replaces the model profile's for later embedding runs; earlier vectors stay in their space."""
    if clip_pretrained and not clip_model_name and not project.clip_model_name:
        raise ApplicationError("Give the CLIP model's name along with its weights.", field="clip_model_name")
    if clip_model_name is not None:
        limit = Project._meta.get_field("clip_model_name").max_length
        if len(clip_model_name.strip()) > limit:
            raise ApplicationError(f"The CLIP model's name is longer than {limit} characters.", field="clip_model_name")
        project.clip_model_name = clip_model_name.strip()
    if clip_pretrained is not None:
        project.clip_pretrained = clip_pretrained.strip()
    if name is not None:
        if not name.strip():
            raise ApplicationError("A project needs a name.", field="name")
        project.name = name.strip()
    if description is not None:
        project.description = description
    project.save()
    return project


@transaction.atomic
def membership_add(*, project: Project, username: str, added_by: User | None = None) -> Membership:
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ApplicationError(f"No user named {username!r}.", field="username")
    membership, created = Membership.objects.get_or_create(project=project, user=user)
    if created:
        audit_record(
            action=AuditAction.MEMBER_ADDED, actor=added_by, project=project, target=f"user {user.username}",
            summary=f"{user.username} added to the project",
        )  # fmt: skip
    return membership


@transaction.atomic
def membership_remove(*, project: Project, user: User, removed_by: User | None = None) -> None:
    if project.created_by_id == user.id:
        raise ApplicationError("The project's creator cannot be removed.")
    if Membership.objects.filter(project=project, user=user).delete()[0]:
        audit_record(
            action=AuditAction.MEMBER_REMOVED, actor=removed_by, project=project, target=f"user {user.username}",
            summary=f"{user.username} removed from the project",
        )  # fmt: skip


def _clean_aliases(aliases: list[str] | str | None) -> list[str]:
    if aliases is None:
        return []
    if isinstance(aliases, str):
        aliases = aliases.split(",")
    cleaned = []
    for alias in aliases:
        alias = str(alias).strip()
        if alias and alias.casefold() not in {a.casefold() for a in cleaned}:
            cleaned.append(alias)
    return cleaned


def _check_name(project: Project, name: str, exclude_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise ApplicationError("A character needs a name.", field="name")
    clash = Character.objects.filter(project=project, name__iexact=name).exclude(id=exclude_id)
    if clash.exists():
        raise ApplicationError(f"This project already has a character named {name!r}.", field="name")
    return name


@transaction.atomic
def character_create(
    *, project: Project, name: str, description: str = "", aliases: list[str] | str | None = None
) -> Character:
    name = _check_name(project, name)
    try:
        with transaction.atomic():
            return Character.objects.create(
                project=project, name=name, description=description, aliases=_clean_aliases(aliases)
            )
    except IntegrityError as exc:  # a concurrent create won the race
        raise ApplicationError(f"This project already has a character named {name!r}.", field="name") from exc


@transaction.atomic
def character_update(
    *,
    character: Character,
    name: str | None = None,
    description: str | None = None,
    aliases: list[str] | str | None = None,
) -> Character:
    if name is not None:
        character.name = _check_name(character.project, name, exclude_id=character.id)
    if description is not None:
        character.description = description
    if aliases is not None:
        character.aliases = _clean_aliases(aliases)
    character.save()
    return character


@transaction.atomic
def character_delete(*, character: Character) -> None:
    for reference in character.references.all():
        reference_image_delete(reference=reference)
    character.delete()


def reference_image_limits() -> ImageLimits:
    return ImageLimits(max_bytes=settings.REFERENCE_IMAGE_MAX_BYTES, max_pixels=settings.REFERENCE_IMAGE_MAX_PIXELS)


@transaction.atomic
def reference_image_add(*, character: Character, upload: UploadedFile) -> ReferenceImage:
    """Validate an uploaded reference image, re-encode it as PNG and attach it to the character.

    Refused uploads raise ApplicationError naming the file and the reason; nothing is stored.
    """
    limits = reference_image_limits()
    if upload.size is not None and upload.size > limits.max_bytes:
        raise ApplicationError(
            f"{upload.name}: the file is {upload.size:,} bytes; the limit is {limits.max_bytes:,}.",
            field="image",
        )
    try:
        decoded = decode_image(upload.read(), limits)
    except ImageRejected as exc:
        raise ApplicationError(f"{upload.name}: {exc.message}", field="image", extra={"code": exc.code}) from exc
    reference = ReferenceImage(
        character=character,
        width=decoded.width,
        height=decoded.height,
        content_type="image/png",
        original_name=(upload.name or "")[:255],
    )
    reference.image.save(f"{uuid.uuid4().hex}.png", ContentFile(encode_png(decoded.image)), save=False)
    try:
        reference.save()
    except Exception:
        reference.image.delete(save=False)  # the row failed: do not leave an orphan file behind
        raise
    return reference


@transaction.atomic
def reference_image_delete(*, reference: ReferenceImage) -> None:
    storage, name = reference.image.storage, reference.image.name
    reference.delete()
    # Remove the file only once the row is gone for good.
    transaction.on_commit(lambda: storage.delete(name))
