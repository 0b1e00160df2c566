from django.db import models

from apps.core.models import BaseModel, frame_ids_between


class FramedRun(BaseModel):
    """A run over frames in a set order. Its membership is rows (`frames`, a `RunFrame` each), not
    one list of ids: a run of a million frames is read a range of positions (a shard) at a time."""

    frame_count = models.PositiveIntegerField(default=0, help_text="how many frames it goes over")
    # Kept as answers are stored (and recounted when a run ends), so that no page counts a run's
    # answers per request: at a million frames that is a scan of a million rows.
    answered_count = models.PositiveIntegerField(default=0, help_text="frames with a stored answer")
    failed_count = models.PositiveIntegerField(default=0, help_text="answers that failed to parse or to arrive")
    frames_from = models.CharField(
        max_length=300, blank=True, help_text="which frames it ran on, for people (e.g. an evaluation's eval set)"
    )

    class Meta:
        abstract = True

    @property
    def done(self) -> int:
        return self.answered_count

    @property
    def failed(self) -> int:
        return self.failed_count

    def frame_ids(self, start: int = 0, stop: int | None = None) -> list[int]:
        """Its frames' asset ids in order, those at positions [start, stop)."""
        return frame_ids_between(self.frames, start, stop)


class RunFrame(models.Model):
    """One frame of a run, at its place in the run's order."""

    position = models.PositiveIntegerField()
    asset = models.ForeignKey("media.Asset", on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True
        ordering = ["position"]

    def __str__(self) -> str:
        return f"frame {self.position + 1} of run #{self.run_id}: asset {self.asset_id}"


class DetectionRun(FramedRun):
    """A detector over a set of assets (a gold set, or chosen frames)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="detection_runs")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_version = models.ForeignKey("modelhub.ModelVersion", on_delete=models.PROTECT, related_name="+")
    gold_set = models.ForeignKey("curation.GoldSet", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    prompt_version = models.CharField(max_length=50)
    prompt_example = models.TextField(blank=True, help_text="the prompt as text, for people to read")
    inputs_key = models.CharField(
        max_length=40, blank=True, db_index=True, help_text="digest of its inputs (apps/core/inputs.py): --reuse"
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Detection run #{self.pk} ({self.model_version})"


class DetectionRunFrame(RunFrame):
    run = models.ForeignKey(DetectionRun, on_delete=models.CASCADE, related_name="frames")

    class Meta(RunFrame.Meta):
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="detection_run_frame_position"),
            models.UniqueConstraint(fields=["run", "asset"], name="detection_run_frame_once"),
        ]


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
        # A run page reads its answers in id order a keyset page at a time: without (run, id) the
        # database walks the whole table's id index from the start, skipping other runs' rows.
        indexes = [
            models.Index(fields=["run", "id"], name="detection_run_page"),
            # the run page's ?show=failed and ?show=flagged: their rows alone, in page order
            models.Index(fields=["run", "id"], name="detection_run_failed", condition=models.Q(ok=False)),
            models.Index(fields=["run", "id"], name="detection_run_flagged", condition=~models.Q(flags=[])),
        ]


class CaptionPipeline(models.TextChoices):
    NO_DETECTION = "no_detection", "No character detection (whole roster as context)"
    DETECTION = "detection", "Detector → captioner"


class CaptionRun(FramedRun):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="caption_runs")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    pipeline = models.CharField(max_length=20, choices=CaptionPipeline.choices)
    detection_run = models.ForeignKey(
        DetectionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="caption_runs"
    )
    model_version = models.ForeignKey("modelhub.ModelVersion", on_delete=models.PROTECT, related_name="+")
    prompt_version = models.CharField(max_length=50)
    prompt_example = models.TextField(blank=True)
    inputs_key = models.CharField(
        max_length=40, blank=True, db_index=True, help_text="digest of its inputs (apps/core/inputs.py): --reuse"
    )
    health = models.JSONField(
        default=dict, blank=True, help_text="the health check's summary, as of `answered` answers (selectors)"
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Caption run #{self.pk} ({self.get_pipeline_display()})"


class CaptionRunFrame(RunFrame):
    run = models.ForeignKey(CaptionRun, on_delete=models.CASCADE, related_name="frames")

    class Meta(RunFrame.Meta):
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="caption_run_frame_position"),
            models.UniqueConstraint(fields=["run", "asset"], name="caption_run_frame_once"),
        ]


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
        indexes = [  # as for detections
            models.Index(fields=["run", "id"], name="caption_run_page"),
            models.Index(fields=["run", "id"], name="caption_run_failed", condition=models.Q(ok=False)),
            models.Index(fields=["run", "id"], name="caption_run_flagged", condition=~models.Q(flags=[])),
        ]
