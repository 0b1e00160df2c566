"""Evaluation sets, pipeline comparisons and the per-caption scores behind their reports."""

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel, frame_ids_between


class EvalSet(BaseModel):
    """Frames for model-based evaluation, sampled (seeded) from frames in no gold set of the project."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="eval_sets")
    name = models.CharField(max_length=200)
    seed = models.PositiveIntegerField(default=0)
    requested = models.PositiveIntegerField()
    frame_count = models.PositiveIntegerField(default=0, help_text="how many frames it holds")
    excluded_gold = models.PositiveIntegerField(default=0, help_text="candidate frames left out as gold frames")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.frame_count} frames)"

    def frame_ids(self, start: int = 0, stop: int | None = None) -> list[int]:
        """Its frames' asset ids in order (ascending ids), those at positions [start, stop)."""
        return frame_ids_between(self.frames, start, stop)


class EvalSetFrame(models.Model):
    """One frame of an eval set, at its place: membership as rows, not one list of ids in a row
    read on every access (an eval set may hold a hundred thousand frames)."""

    eval_set = models.ForeignKey(EvalSet, on_delete=models.CASCADE, related_name="frames")
    position = models.PositiveIntegerField()
    asset = models.ForeignKey("media.Asset", on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["eval_set", "position"], name="eval_set_frame_position"),
            models.UniqueConstraint(fields=["eval_set", "asset"], name="eval_set_frame_once"),
        ]

    def __str__(self) -> str:
        return f"frame {self.position + 1} of eval set #{self.eval_set_id}: asset {self.asset_id}"


class Comparison(BaseModel):
    """No detection vs each chosen detector → the same captioner, on one eval set; plus each
    detector's instance-grounded scores on the gold test split, beside those of the characters
    named in each pipeline's captions of the same frames."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="comparisons")
    eval_set = models.ForeignKey(EvalSet, on_delete=models.PROTECT, related_name="comparisons")
    captioner = models.ForeignKey("modelhub.ModelVersion", on_delete=models.PROTECT, related_name="+")
    judge = models.ForeignKey(
        "modelhub.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    test_labels = models.JSONField(default=dict, help_text="gold test split: asset id → names")
    test_split_source = models.CharField(max_length=300, blank=True)
    profile = models.CharField(max_length=20, help_text="the model profile that produced the numbers")
    params = models.JSONField(default=dict)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    report = models.JSONField(default=dict, blank=True)
    inputs_key = models.CharField(
        max_length=40, blank=True, db_index=True, help_text="digest of its inputs (apps/core/inputs.py): --reuse"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Comparison #{self.id}"


class ComparisonPipeline(models.Model):
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="pipelines")
    position = models.PositiveSmallIntegerField()
    label = models.CharField(max_length=300)
    detector = models.ForeignKey(
        "modelhub.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    eval_detection_run = models.ForeignKey(
        "captioning.DetectionRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    test_detection_run = models.ForeignKey(
        "captioning.DetectionRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    caption_run = models.ForeignKey(
        "captioning.CaptionRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    test_caption_run = models.ForeignKey(
        "captioning.CaptionRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="captions of the gold test split, whose characters are scored against the gold labels",
    )

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["comparison", "position"], name="pipeline_position_unique")]

    def __str__(self) -> str:
        return self.label


class CharacterReference(models.TextChoices):
    """What a caption's characters were scored against. The eval set holds no gold frame (by
    construction), so only a world that knows its own truth can score them there."""

    TRUTH = "truth", "the demo world's truth"


class CaptionScore(models.Model):
    """Every score of one eval-set caption of one pipeline (the rows behind every number in the report)."""

    pipeline = models.ForeignKey(ComparisonPipeline, on_delete=models.CASCADE, related_name="scores")
    asset = models.ForeignKey("media.Asset", on_delete=models.CASCADE, related_name="+")
    tokens = models.PositiveIntegerField(default=0)
    too_long = models.BooleanField(default=False)
    adheres = models.BooleanField(default=False)
    health = models.JSONField(default=dict, help_text="parsed, repairs, missing and empty fields")
    clip_score = models.FloatField(null=True)
    clip_chunked = models.BooleanField(default=False)
    judge_status = models.CharField(max_length=20, blank=True, help_text="ok | unparsable | error | (not judged)")
    judge_scores = models.JSONField(default=dict, blank=True)
    judge_overall = models.FloatField(null=True)
    judge_raw = models.TextField(blank=True)
    # The caption's `characters` field scored against the frame's reference names (null: the frame
    # has none, e.g. every frame of a real project).
    characters_reference = models.CharField(max_length=20, choices=CharacterReference.choices, blank=True)
    characters_precision = models.FloatField(null=True)
    characters_recall = models.FloatField(null=True)
    characters_f1 = models.FloatField(null=True)
    characters_mistakes = models.PositiveIntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pipeline", "asset"], name="caption_score_once")]

    def __str__(self) -> str:
        return f"{self.pipeline}: frame {self.asset_id}"
