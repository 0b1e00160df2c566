"""Writes for exports: start one (checked, as a job), and record what the job made."""

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.captioning.models import CaptionRun
from apps.core.errors import ApplicationError
from apps.core.permissions import Action, authorize
from apps.exports.models import Export, ExportFormat, ExportSource
from apps.exports.selectors import ExportFilters
from apps.jobs.services import job_start_for
from apps.projects.models import Project

MAX_SHARD_SIZE = 1_000_000


def _checked_template(template: str) -> str:
    from workers.exports.dense import DenseTemplate

    try:
        DenseTemplate(template)
    except ValueError as exc:
        raise ApplicationError(str(exc), field="template") from None
    return template


@transaction.atomic
def export_start(
    *,
    project: Project,
    created_by: User | None,
    format: str,
    source: str,
    caption_run: CaptionRun | None = None,
    template: str | None = None,
    shard_size: int = 1000,
    filters: dict[str, Any] | None = None,
    out_dir: str = "",
    inputs_key: str = "",
    enqueue: bool = True,
) -> Export:
    """An export row and its job. `out_dir` (shell only) is a local folder the files go to as well
    as the archive; it must be empty or absent, checked again when the job writes."""
    from workers.exports.dense import DEFAULT_TEMPLATE

    if created_by is not None:
        authorize(created_by, Action.EXPORT_DATASET)
    if format not in ExportFormat.values:
        raise ApplicationError(f"Unknown format {format!r}: one of {', '.join(ExportFormat.values)}.", field="format")
    if source not in ExportSource.values:
        raise ApplicationError(f"Unknown source {source!r}: one of {', '.join(ExportSource.values)}.", field="source")
    if source == ExportSource.RUN:
        if caption_run is None:
            raise ApplicationError("Pick the caption run to export.", field="caption_run")
        if caption_run.project_id != project.id:
            raise ApplicationError("That caption run belongs to another project.", field="caption_run")
    else:
        caption_run = None
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or not 1 <= shard_size <= MAX_SHARD_SIZE:
        raise ApplicationError(
            f"The shard size must be a whole number from 1 to {MAX_SHARD_SIZE:,}.", field="shard_size"
        )
    try:
        cleaned_filters = ExportFilters.from_mapping(filters or {})
    except (TypeError, ValueError) as exc:
        raise ApplicationError(str(exc), field="filters") from None
    export = Export.objects.create(
        project=project,
        source=source,
        caption_run=caption_run,
        format=format,
        template=_checked_template(template if template is not None else DEFAULT_TEMPLATE),
        shard_size=shard_size,
        filters=cleaned_filters.to_dict(),
        out_dir=out_dir,
        inputs_key=inputs_key,
        created_by=created_by,
    )
    job_start_for(export, kind="dataset_export", created_by=created_by, enqueue=enqueue)
    return export


@transaction.atomic
def export_record_result(*, export: Export, archive_name: str, archive_bytes: int, result: dict[str, Any]) -> Export:
    """What the job made: the archive in storage, the counts and the lint of what was exported."""
    export.archive.name = archive_name
    export.archive_bytes = archive_bytes
    export.frames = result["frames"]
    export.lint = result.get("lint") or {}
    export.result = {key: value for key, value in result.items() if key != "lint"}
    export.save(update_fields=["archive", "archive_bytes", "frames", "lint", "result", "updated_at"])
    return export


def export_downloaded(*, export: Export, by: User) -> None:
    """The moment the dataset leaves the app: who took which export."""
    audit_record(
        action=AuditAction.EXPORT_DOWNLOADED, actor=by, project=export.project, target=f"export #{export.id}",
        summary=f"{export.get_format_display()} export of {export.frames} frames",
        detail={"format": export.format, "source": export.source, "frames": export.frames},
    )  # fmt: skip
