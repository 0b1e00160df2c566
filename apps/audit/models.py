from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    JOB_LAUNCHED = "job_launched", "launched a job"
    JOB_CANCELLED = "job_cancelled", "cancelled a job"
    EXPORT_DOWNLOADED = "export_downloaded", "downloaded an export"
    CAPTION_CORRECTED = "caption_corrected", "corrected a caption"
    ROLE_CHANGED = "role_changed", "changed a role"
    MEMBER_ADDED = "member_added", "added a member"
    MEMBER_REMOVED = "member_removed", "removed a member"


class AuditEntryImmutable(Exception):
    """The audit log is append-only: an entry is never changed or deleted."""


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditEntryImmutable("Audit entries cannot be changed.")

    def delete(self):
        raise AuditEntryImmutable("Audit entries cannot be deleted.")


class AuditEntry(models.Model):
    """One thing a person did. The actor's and project's names are kept beside the keys, so an
    entry still says who and where after the user or the project is gone."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150)  # "system" for the workers and the beat
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    project_name = models.CharField(max_length=200, blank=True)
    target = models.CharField(max_length=200)  # what it was done on: "job #12", "user ann", …
    summary = models.CharField(max_length=500)
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"], name="audit_project_newest")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name} {self.get_action_display()} {self.target}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AuditEntryImmutable("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditEntryImmutable("Audit entries cannot be deleted.")
