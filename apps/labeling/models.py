"""Label Studio projects made from frozen gold sets, their tasks, and the labels that come back."""

import uuid

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel


class LabelingStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be pushed"
    PUSHING = "pushing", "Pushing tasks"
    READY = "ready", "Ready for annotators"
    FAILED = "failed", "Push failed"


class LabelingProject(BaseModel):
    """One Label Studio project per frozen gold-set version."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="labeling_projects")
    gold_set = models.OneToOneField("curation.GoldSet", on_delete=models.PROTECT, related_name="labeling_project")
    detection_run = models.ForeignKey(
        "captioning.DetectionRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="where the pre-annotations come from; none → annotators start from empty choices",
    )
    prediction_model_version = models.CharField(max_length=300, blank=True)
    control_fraction = models.FloatField(default=0.1, help_text="share of tasks shown without pre-annotation")
    seed = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=LabelingStatus.choices, default=LabelingStatus.PENDING)
    # Written into the Label Studio project's description, so a push whose answer was lost finds
    # the project it created (ids restart with a new database; this does not).
    ls_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    ls_project_id = models.PositiveIntegerField(null=True, blank=True, unique=True)
    ls_webhook_id = models.PositiveIntegerField(null=True, blank=True)
    # The webhook's shared secret (sent by Label Studio as a header); compared in constant time.
    webhook_secret = models.CharField(max_length=64)
    push_job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # "sync pending": the last talk with Label Studio failed; the periodic reconciliation retries.
    sync_error = models.TextField(blank=True)
    sync_error_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    images_signed_at = models.DateTimeField(null=True, blank=True, help_text="when the tasks' image links were signed")
    # Set while a webhook-triggered sync is queued, so a burst of webhooks queues one sync.
    sync_queued = models.BooleanField(default=False)
    # Bumped whenever what the labelling page shows changes (tasks, labels, resolutions): the page's
    # poll compares it instead of recomputing, and the summary is computed once per change.
    data_version = models.PositiveBigIntegerField(default=0)
    data_changed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Labelling of {self.gold_set}"

    @property
    def sync_pending(self) -> bool:
        return bool(self.sync_error) or self.pending_annotations.exists()


class LabelStudioAccount(BaseModel):
    """A Label Studio account the app made for one of its users: the only way answers count.

    Made through Label Studio's API with the admin token (sign-up is off), so the app knows which
    Label Studio user id is whose. An e-mail address alone proves nothing: anyone could have signed
    up with it while sign-up was open.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="labelstudio_account")
    ls_user_id = models.PositiveIntegerField(unique=True)
    ls_email = models.CharField(max_length=254, help_text="the Label Studio account's e-mail (lower case)")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Label Studio user {self.ls_user_id} ({self.ls_email}) → {self.user}"


class LabelingSummary(models.Model):
    """What the labelling page shows, computed once per change (see selectors.labeling_summary)."""

    labeling_project = models.OneToOneField(LabelingProject, on_delete=models.CASCADE, related_name="summary")
    key = models.CharField(max_length=64, help_text="what it was computed from (data version, labellers, roster)")
    data = models.JSONField(default=dict)
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Summary of {self.labeling_project_id} ({self.key[:8]})"


class LabelingTask(models.Model):
    labeling_project = models.ForeignKey(LabelingProject, on_delete=models.CASCADE, related_name="tasks")
    asset = models.ForeignKey("media.Asset", on_delete=models.CASCADE, related_name="+")
    ls_task_id = models.PositiveIntegerField()
    is_control = models.BooleanField(default=False, help_text="shown without pre-annotation")
    # What the detector said, whether or not it was shown: the control slice's accuracy needs it.
    predicted_names = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["labeling_project", "asset"], name="labeling_task_once_per_asset"),
            models.UniqueConstraint(fields=["labeling_project", "ls_task_id"], name="labeling_task_ls_id_unique"),
        ]

    def __str__(self) -> str:
        return f"Task {self.ls_task_id} (asset {self.asset_id})"


class GoldLabel(BaseModel):
    """One annotator's answer for one frame, as Label Studio holds it now."""

    labeling_project = models.ForeignKey(LabelingProject, on_delete=models.CASCADE, related_name="labels")
    task = models.ForeignKey(LabelingTask, on_delete=models.CASCADE, related_name="labels")
    asset = models.ForeignKey("media.Asset", on_delete=models.CASCADE, related_name="gold_labels")
    names = models.JSONField(default=list, help_text="the characters ticked, sorted")
    # The app user whose Label Studio account (LabelStudioAccount) gave the answer, as of the sync;
    # whether the answer counts is decided when it is read (selectors.labellers): membership and
    # roles can change after the sync.
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="gold_labels"
    )
    ls_user_id = models.PositiveIntegerField(null=True, blank=True)
    ls_user_email = models.CharField(max_length=254, blank=True, help_text="as Label Studio reports it (lower case)")
    ls_annotation_id = models.PositiveIntegerField()
    ls_updated_at = models.DateTimeField()
    was_cancelled = models.BooleanField(default=False, help_text="skipped in Label Studio")
    deleted = models.BooleanField(default=False, help_text="deleted in Label Studio; kept for the record")

    class Meta:
        ordering = ["asset_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["labeling_project", "ls_annotation_id"], name="gold_label_once_per_annotation"
            )
        ]

    def __str__(self) -> str:
        return f"Annotation {self.ls_annotation_id}: {', '.join(self.names) or '(none)'}"


class PendingAnnotation(models.Model):
    """An annotation a webhook announced and the sync has not fetched yet (one row per id)."""

    labeling_project = models.ForeignKey(LabelingProject, on_delete=models.CASCADE, related_name="pending_annotations")
    ls_annotation_id = models.PositiveIntegerField()
    received_at = models.DateTimeField(auto_now=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["labeling_project", "ls_annotation_id"], name="pending_annotation_once")
        ]

    def __str__(self) -> str:
        return f"Pending annotation {self.ls_annotation_id}"


class GoldResolution(BaseModel):
    """A lead's decision for a frame whose annotators disagree."""

    labeling_project = models.ForeignKey(LabelingProject, on_delete=models.CASCADE, related_name="resolutions")
    asset = models.ForeignKey("media.Asset", on_delete=models.CASCADE, related_name="+")
    names = models.JSONField(default=list)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["labeling_project", "asset"], name="gold_resolution_once_per_asset")
        ]

    def __str__(self) -> str:
        return f"Frame {self.asset_id} resolved as {', '.join(self.names) or '(nobody)'}"
