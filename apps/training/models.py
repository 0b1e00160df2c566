"""Detector fine-tuning runs (paper §5, LoRA SFT) and the metrics they report while they train."""

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel


class TrainingRun(BaseModel):
    """One LoRA SFT of a detector on a labelled gold set; its adapter becomes a new detector version.

    The lineage of that version is this row: base model, gold-set version, the stored split,
    hyperparameters and the metrics of every epoch.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="training_runs")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    base_version = models.ForeignKey("modelhub.ModelVersion", on_delete=models.PROTECT, related_name="+")
    labeling_project = models.ForeignKey(
        "labeling.LabelingProject", on_delete=models.PROTECT, related_name="training_runs"
    )
    gold_set_version = models.PositiveIntegerField()
    params = models.JSONField(default=dict, help_text="SFTConfig hyperparameters (paper defaults unless changed)")
    seed = models.PositiveIntegerField(default=0)
    # Stored at launch, so evaluation uses exactly these frames (asset id → names at launch).
    train_labels = models.JSONField(default=dict)
    validation_labels = models.JSONField(default=dict)
    merge = models.BooleanField(default=False, help_text="also merge the adapter into the base, checked equivalent")
    output_dir = models.CharField(max_length=500, blank=True)
    result_version = models.OneToOneField(
        "modelhub.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )
    merged_version = models.OneToOneField(
        "modelhub.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from_run"
    )
    merge_check = models.JSONField(default=dict, blank=True)
    inputs_key = models.CharField(
        max_length=40, blank=True, db_index=True, help_text="digest of its inputs (apps/core/inputs.py): --reuse"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Training run #{self.id}"


class TrainingStep(models.Model):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="steps")
    step = models.PositiveIntegerField()
    epoch = models.PositiveIntegerField()
    loss = models.FloatField()
    learning_rate = models.FloatField()
    seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="training_step_once")]

    def __str__(self) -> str:
        return f"step {self.step}: loss {self.loss:.4f}"


class TrainingEpoch(models.Model):
    """Validation after an epoch; epoch 0 is the untrained model."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="epochs")
    epoch = models.PositiveIntegerField()
    train_loss = models.FloatField(null=True)
    val_loss = models.FloatField(null=True)
    precision = models.FloatField(null=True)
    recall = models.FloatField(null=True)
    sample_f1 = models.FloatField(null=True)
    mistakes = models.FloatField(null=True)
    parse_failures = models.PositiveIntegerField(default=0)
    predictions = models.JSONField(default=dict, help_text="validation frame (asset id) → predicted names")
    seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["epoch"]
        constraints = [models.UniqueConstraint(fields=["run", "epoch"], name="training_epoch_once")]

    def __str__(self) -> str:
        return f"epoch {self.epoch}: F1 {self.sample_f1}"
