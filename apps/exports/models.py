"""A dataset export: which captions, in which format, with which filters, and the archive it made."""

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel


class ExportFormat(models.TextChoices):
    JSONL = "jsonl", "Structured JSONL"
    DENSE = "dense", "Dense captions (JSONL)"
    HF = "hf", "Hugging Face imagefolder"
    KOHYA = "kohya", "kohya / musubi-tuner (image + .txt)"
    WEBDATASET = "webdataset", "WebDataset tar shards"


class ExportSource(models.TextChoices):
    RUN = "run", "one caption run"
    BEST = "best", "the best caption per frame across runs"


# What each filter keeps, as the pages say it.
FILTER_LABELS = {
    "min_judge_score": "judge score at least",
    "require_adherence": "structure adherence",
    "exclude_flagged": "not flagged",
    "only_reviewed": "reviewed",
    "only_with_characters": "with characters",
}


def export_archive_path(export: "Export", filename: str) -> str:
    return f"exports/{export.project_id}/{export.id}/{filename}"


class Export(BaseModel):
    """What a lead asked for (source, format, template, filters) and what came of it. The job
    writes the files and one zip archive through the configured storage; `result` holds the
    counts, and `lint` the health check of exactly what was exported."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="exports")
    source = models.CharField(max_length=10, choices=ExportSource.choices)
    caption_run = models.ForeignKey(
        "captioning.CaptionRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    format = models.CharField(max_length=20, choices=ExportFormat.choices)
    template = models.CharField(max_length=500, help_text="how the dense caption is written from the four fields")
    shard_size = models.PositiveIntegerField(default=1000, help_text="WebDataset: samples per tar shard")
    filters = models.JSONField(default=dict, blank=True)
    out_dir = models.CharField(max_length=500, blank=True, help_text="a local folder asked for from the shell")
    inputs_key = models.CharField(max_length=64, blank=True, db_index=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    frames = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    lint = models.JSONField(default=dict, blank=True)
    archive = models.FileField(upload_to=export_archive_path, max_length=300, blank=True)
    archive_bytes = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Export #{self.id} ({self.get_format_display()})"

    @property
    def active_filters(self) -> list[tuple[str, object]]:
        """(label, value) of each filter that is on."""
        return [(label, self.filters[name]) for name, label in FILTER_LABELS.items() if self.filters.get(name)]

    @property
    def source_label(self) -> str:
        if self.source == ExportSource.RUN:
            return f"caption run #{self.caption_run_id}" if self.caption_run_id else "a caption run (deleted)"
        return "best caption per frame"
