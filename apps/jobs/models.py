from django.conf import settings
from django.db import models
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from apps.core.models import BaseModel
from apps.jobs.kinds import JOB_KINDS


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    # A parent job (e.g. an evaluation) between its stages: its child jobs run on their own queues
    # and wake it when the last of them ends. It holds no worker and has no heartbeat to watch.
    WAITING = "waiting", "Waiting for its stages"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


STAGE_ROWS = 20  # child jobs listed on a job page before it summarises them

FINISHED_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class Job(BaseModel):
    """One long piece of work. Its state lives here, never only in the broker."""

    kind = models.CharField(max_length=50, db_index=True)
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="jobs", null=True, blank=True
    )
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    queue = models.CharField(max_length=20, default="cpu")
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    log = models.TextField(blank=True, help_text="Timestamped state changes and handler notes.")
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    enqueue_count = models.PositiveIntegerField(default=0, help_text="messages sent to the broker for this job")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # A stage of a parent job: its progress moves the parent's bar across [from, to], a cancel of
    # the parent reaches it, and its end wakes the parent.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    parent_progress_from = models.FloatField(default=0.0)
    parent_progress_to = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0.0) & models.Q(progress__lte=1.0),
                name="job_progress_between_0_and_1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def stages(self) -> dict:
        """Its child jobs for the job page: all of them when few; for a run split into many shards,
        how many are in each status and those not yet done (a page never lists a thousand)."""
        children = self.children.order_by("id")
        counts = dict(children.order_by().values_list("status").annotate(n=Count("id")))
        total = sum(counts.values())
        rows = children if total <= STAGE_ROWS else children.exclude(status=JobStatus.SUCCEEDED)
        rows = list(rows[:STAGE_ROWS])
        return {
            "rows": rows,
            "total": total,
            "hidden": total - len(rows),
            "counts": [(label, counts[value]) for value, label in JobStatus.choices if counts.get(value)],
        }

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the pace since it first started; None until there is a pace to go by."""
        if self.is_finished or not self.started_at or not 0.02 <= self.progress < 1.0:
            return None
        elapsed = (timezone.now() - self.started_at).total_seconds()
        return elapsed * (1.0 - self.progress) / self.progress

    @property
    def eta_text(self) -> str:
        """The ETA for people: "about 3 min left"; empty without one."""
        eta = self.eta_seconds
        if eta is None:
            return ""
        if eta < 90:
            return f"about {max(1, round(eta))} s left"
        if eta < 90 * 60:
            return f"about {round(eta / 60)} min left"
        return f"about {eta / 3600:.1f} h left"

    @property
    def produced_link(self) -> tuple[str, str] | None:
        """(what it made or works on, its page's URL) for the job page; None when its kind has no
        such page or the row is not known yet (e.g. a clustering before it ended)."""
        spec = JOB_KINDS.get(self.kind)
        if spec is None or spec.produces is None or self.project_id is None:
            return None
        label, url_name, key = spec.produces
        if key is None:
            return label, reverse(url_name, args=[self.project_id])
        row_id = self.params.get(key) or (self.result or {}).get(key)
        return (label, reverse(url_name, args=[self.project_id, row_id])) if row_id else None

    @property
    def kind_label(self) -> str:
        spec = JOB_KINDS.get(self.kind)
        return spec.label if spec else self.kind

    @property
    def progress_percent(self) -> int:
        return int(round(self.progress * 100))
