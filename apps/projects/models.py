from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from apps.core.models import BaseModel

CURRENT_CAPTION_SCHEMA_VERSION = 1


class Project(BaseModel):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    caption_schema_version = models.PositiveIntegerField(default=CURRENT_CAPTION_SCHEMA_VERSION)
    clip_model_name = models.CharField(
        max_length=200, blank=True, help_text="open_clip model name; empty = the model profile's CLIP"
    )
    clip_pretrained = models.CharField(
        max_length=500, blank=True, help_text="open_clip pretrained tag or a local checkpoint path"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Membership(BaseModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_per_project"),
        ]


class Character(BaseModel):
    """A member of the roster: what the detector must recognise and the captioner must name."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="characters")
    name = models.CharField(max_length=100)
    aliases = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "project", name="character_name_unique_per_project"),
        ]

    def __str__(self) -> str:
        return self.name


def reference_image_path(instance: "ReferenceImage", filename: str) -> str:
    # Never the uploader's file name: it may hold `../` or markup. `filename` is ours (a uuid).
    return f"projects/{instance.character.project_id}/characters/{instance.character_id}/{filename}"


class ReferenceImage(BaseModel):
    character = models.ForeignKey(Character, on_delete=models.CASCADE, related_name="references")
    image = models.ImageField(upload_to=reference_image_path)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    content_type = models.CharField(max_length=50, default="image/png")
    original_name = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["id"]
