"""The export job: the kept captions streamed through a format writer, then one zip in storage.

The writer works in a local staging folder (or the shell's --out folder) and the zip is copied
into the configured storage (local media or S3) from a temporary file: memory stays flat at any
size. Nothing is recorded on the export until the archive is stored.
"""

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from apps.exports import selectors, services
from apps.exports.models import Export, export_archive_path
from apps.jobs.kinds import id_params, job_kind
from apps.jobs.models import Job
from apps.jobs.runner import JobContext

PROGRESS_EVERY = 50


def _records(export: Export, ctx: JobContext, total: int):
    for done, candidate in enumerate(selectors.export_kept(export), start=1):
        yield selectors.candidate_record(candidate, export.project)
        if done % PROGRESS_EVERY == 0:
            ctx.progress(min(done / max(total, 1), 0.95), f"{done} of at most {total} frames written")


@job_kind(
    name="dataset_export",
    label="Export the captioned dataset",
    queue="cpu",
    clean_params=id_params("export_id"),
    produces=("the export", "exports:detail", "export_id"),
)
def dataset_export(job: Job, ctx: JobContext) -> dict[str, Any]:
    from workers.exports.archive import pack_zip
    from workers.exports.config import ExportConfig
    from workers.exports.export import write_export

    export = Export.objects.select_related("project", "caption_run").get(
        id=job.params["export_id"], project=job.project
    )
    total = selectors.export_frames_total(project=export.project, source=export.source, caption_run=export.caption_run)
    ctx.log(f"{export}: {export.source_label}, filters {export.filters}, {total} captioned frames to look at")
    ctx.progress(0.0, "Writing the records")
    name = f"{export.project.name}-export-{export.id}-{export.format}"
    config = ExportConfig(
        format=export.format,
        template=export.template,
        shard_size=export.shard_size,
        metadata={
            "project": export.project.name,
            "export_id": export.id,
            "source": export.source_label,
            "filters": export.filters,
            "created_at": export.created_at.isoformat(),
            "created_by": export.created_by.username if export.created_by else None,
        },
        lint=selectors.export_lint_config(export.project),
    )
    staging = Path(tempfile.mkdtemp(prefix=f"export-{export.id}-", dir=_staging_root()))
    try:
        out_dir = Path(export.out_dir) if export.out_dir else staging / "dataset"
        summary = (
            _written_before(out_dir, export.id) or write_export(_records(export, ctx, total), out_dir, config).to_dict()
        )
        ctx.progress(0.96, f"{summary['frames']} frames written; packing the archive")
        archive_path = staging / "archive.zip"
        with open(archive_path, "wb") as archive:
            pack_zip(out_dir, archive, arc_root=_safe(name))
        with open(archive_path, "rb") as archive:
            stored = default_storage.save(export_archive_path(export, f"{_safe(name)}.zip"), File(archive))
        summary["out_dir"] = str(out_dir) if export.out_dir else ""
        services.export_record_result(
            export=export, archive_name=stored, archive_bytes=archive_path.stat().st_size, result=summary
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    ctx.log(f"{summary['frames']} frames, {summary['files']} files, archive {stored}")
    return {"export_id": export.id, "frames": summary["frames"], "files": summary["files"], "archive": stored}


def _written_before(out_dir: Path, export_id: int) -> dict[str, Any] | None:
    """The shell's folder as an earlier attempt of this same export finished it (its worker died
    before the archive was stored), summarised as `ExportResult.to_dict()` does: used as it is,
    since an export never writes over a folder."""
    manifest = out_dir / "manifest.json"
    if not manifest.is_file():
        return None
    written = json.loads(manifest.read_text(encoding="utf-8"))
    if written.get("metadata", {}).get("export_id") != export_id:
        return None
    files = [path for path in out_dir.rglob("*") if path.is_file()]
    return {
        "format": written["format"],
        "frames": written["frames"],
        "files": len(files),
        "bytes": sum(path.stat().st_size for path in files),
        "out_dir": str(out_dir),
        "lint": written.get("lint"),
    }


def _staging_root() -> Path:
    root = Path(settings.VAR_DIR) / "exports-staging"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _safe(text: str) -> str:
    from workers.exports.records import safe_file_stem

    return safe_file_stem(text)
