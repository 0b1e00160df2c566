from django.db import models

from apps.core.models import BaseModel


class DetectionRun(BaseModel):
    """A detector over a set of assets (a gold set, or chosen frames)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="detection_runs")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_version = models.ForeignKey("modelhub.ModelVersion", on_delete=models.PROTECT, related_name="+")
    gold_set = models.ForeignKey("curation.GoldSet", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    asset_ids = models.JSONField(default=list, help_text="the assets to run on, in order")
    prompt_version = models.CharField(max_length=50)
    prompt_example = models.TextField(blank=True, help_text="the prompt as text, for people to read")
    inputs_key = models.CharField(
        max_length=40, blank=True, db_index=True, help_text="digest of its inputs (apps/core/inputs.py): --reuse"
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Detection run #{self.pk} ({self.model_version})"


class Detection(BaseModel):
    run = models.ForeignKey(DetectionRun, on_delete=models.CASCADE, related_name="detections")
    asset = models.ForeignKey("media.Asset", on_delete=models.CASCADE, related_name="detections")
    names = models.JSONField(default=list)
    unknown_names = models.JSONField(default=list)
    raw_text = models.TextField(blank=True)
    flags = models.JSONField(default=list)
    ok = models.BooleanField(default=True)
    error = models.TextField(blank=True)
    model_version_label = models.CharField(max_length=300)
    latency_seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "asset"], name="detection_once_per_asset")]


class CaptionPipeline(models.TextChoices):
    NO_DETECTION = "no_detection", "No character detection (whole roster as context)"
    DETECTION = "detection", "Detector → captioner"


class CaptionRun(BaseModel):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="caption_runs")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    pipeline = models.CharField(max_length=20, choices=CaptionPipeline.choices)
    detection_run = models.ForeignKey(
        DetectionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="caption_runs"
    )
    model_version = models.ForeignKey("modelhub.ModelVersion", on_delete=models.PROTECT, related_name="+")
    asset_ids = models.JSONField(default=list)
    prompt_version = models.CharField(max_length=50)
    prompt_example = models.TextField(blank=True)
    inputs_key = models.CharField(
        max_length=40, blank=True, db_index=True, help_text="digest of its inputs (apps/core/inputs.py): --reuse"
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Caption run #{self.pk} ({self.get_pipeline_display()})"


class Caption(BaseModel):
    run = models.ForeignKey(CaptionRun, on_delete=models.CASCADE, related_name="captions")
    asset = models.ForeignKey("media.Asset", on_delete=models.CASCADE, related_name="captions")
    fields = models.JSONField(null=True, blank=True, help_text="scene, background, characters, salient_objects")
    characters_given = models.JSONField(default=list, help_text="the characters the captioner was told about")
    raw_text = models.TextField(blank=True)
    flags = models.JSONField(default=list)
    ok = models.BooleanField(default=True)
    error = models.TextField(blank=True)
    model_version_label = models.CharField(max_length=300)
    latency_seconds = models.FloatField(default=0.0)
    tokens = models.PositiveIntegerField(null=True, blank=True, help_text="length in the captioner's own tokens")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "asset"], name="caption_once_per_asset")]
