from django.conf import settings
from django.db import models

from apps.core.models import BaseModel


def _project_path(project_id: int, *parts: str) -> str:
    # Paths are built from ids and hashes only: an uploader's file name never reaches storage.
    return "/".join([f"projects/{project_id}", *parts])


def video_path(instance: "Video", filename: str) -> str:
    return _project_path(instance.project_id, "videos", filename)


def asset_image_path(instance: "Asset", filename: str) -> str:
    return _project_path(instance.project_id, "assets", instance.sha256[:2], filename)


def asset_thumbnail_path(instance: "Asset", filename: str) -> str:
    return _project_path(instance.project_id, "thumbs", instance.sha256[:2], filename)


class Video(BaseModel):
    """A source video; its sampled frames are Assets pointing back here with their timestamps."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="videos")
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to=video_path, max_length=300)
    size_bytes = models.BigIntegerField(default=0)
    container = models.CharField(max_length=100, blank=True)
    codec = models.CharField(max_length=50, blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    duration_seconds = models.FloatField(default=0.0)
    fps = models.FloatField(default=0.0)
    sample_every_seconds = models.FloatField(default=1.0)
    frame_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["original_name", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "sha256"], name="video_unique_per_project")]

    def __str__(self) -> str:
        return self.original_name


class AssetKind(models.TextChoices):
    IMAGE = "image", "Image"
    FRAME = "frame", "Video frame"


class Asset(BaseModel):
    """One picture of the dataset: an uploaded image or a frame sampled from a video."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="assets")
    kind = models.CharField(max_length=10, choices=AssetKind.choices)
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the decoded RGB pixels")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    image = models.FileField(upload_to=asset_image_path, max_length=300)
    thumbnail = models.FileField(upload_to=asset_thumbnail_path, max_length=300)
    original_name = models.CharField(max_length=255, blank=True)
    video = models.ForeignKey(Video, null=True, blank=True, on_delete=models.CASCADE, related_name="frames")
    timestamp_seconds = models.FloatField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["project", "sha256"], name="asset_unique_pixels_per_project")]
        indexes = [
            models.Index(fields=["project", "id"], name="asset_project_keyset"),
            models.Index(fields=["project", "video", "timestamp_seconds"], name="asset_project_video_time"),
        ]

    def __str__(self) -> str:
        if self.video_id:
            return f"{self.video.original_name} @ {self.timestamp_seconds:.2f}s"
        return self.original_name or f"asset {self.pk}"


class GroundTruthManifest(BaseModel):
    """Who is in which frame, when it is known (the demo world's generator writes one).

    Later stages use it to stand in for annotators and to check that SFT really learns.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="ground_truths")
    video = models.ForeignKey(Video, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=200)
    data = models.JSONField()
