"""The ingest job: staged uploads → assets (images, zip members, sampled video frames).

Each file is handled on its own: a refused or unreadable file is reported with its reason and
the batch goes on. Pictures are deduplicated by pixel hash within the project, so a retry or a
re-upload adds nothing twice.
"""

import logging
import math
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage

from apps.jobs.kinds import job_kind
from apps.jobs.models import Job
from apps.jobs.runner import JobCancelled, JobContext
from apps.jobs.services import JobSuperseded
from apps.media import services
from apps.media.models import AssetKind, Video
from workers.media.archives import ArchiveLimits, ArchiveRejected, iter_archive_members
from workers.media.assets import AssetEncoding, PreparedAsset, prepare_asset
from workers.media.images import ImageLimits, ImageRejected, decode_image
from workers.media.video import (
    FrameSamplingConfig,
    SampledFrame,
    VideoRejected,
    VideoUnreadable,
    probe_video,
    sample_frames,
    sniff_container,
)

logger = logging.getLogger(__name__)
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm")
UNRECOGNISED = (
    "Not an accepted file: images must be JPEG, PNG or WebP; videos MP4, MOV, MKV or WebM; or a zip of images."
)


STAGING_ID = re.compile(r"^[0-9a-f]{32}$")


def _clean_params(params: dict[str, Any]) -> dict[str, Any]:
    staging_id = params.get("staging_id")
    if not isinstance(staging_id, str) or not STAGING_ID.match(staging_id) or not isinstance(params.get("files"), list):
        raise ValueError("staging_id (32 hex digits) and files are required")
    key = re.compile(rf"^staging/{staging_id}/\d{{5}}(_[A-Za-z0-9]+)?\.upload$")
    for entry in params["files"]:
        if not isinstance(entry, dict) or not key.match(str(entry.get("key", ""))):
            raise ValueError("every file must be one this upload staged")
    every = float(params.get("sample_every_seconds", 1.0))
    if not 0.04 <= every <= 3600:
        raise ValueError("sample_every_seconds must be between 0.04 and 3600")
    return {
        "staging_id": params["staging_id"],
        "files": params["files"],
        "refused": list(params.get("refused", [])),
        "sample_every_seconds": every,
    }


@dataclass
class IngestReport:
    files: list[dict[str, Any]] = field(default_factory=list)
    added: int = 0
    duplicates: int = 0
    refused: int = 0

    def outcome(self, name: str, outcome: str, reason: str = "", **extra: Any) -> None:
        self.files.append({"name": name, "outcome": outcome, "reason": reason, **extra})
        if outcome == "refused":
            self.refused += 1

    def as_result(self) -> dict[str, Any]:
        return {"added": self.added, "duplicates": self.duplicates, "refused": self.refused, "files": self.files}


@contextmanager
def _local_copy(key: str):
    """Storage may be S3: decoders need a local file, so copy the staged upload to a temp file."""
    with tempfile.NamedTemporaryFile(prefix="vive-ingest-", suffix=".upload") as local:
        with default_storage.open(key, "rb") as staged:
            shutil.copyfileobj(staged, local, length=1024 * 1024)
        local.flush()
        yield Path(local.name)


class _Ingester:
    def __init__(self, job: Job, ctx: JobContext):
        self.job = job
        self.ctx = ctx
        self.project = job.project
        self.every = job.params["sample_every_seconds"]
        self.report = IngestReport()
        self.encoding = AssetEncoding(
            jpeg_quality=settings.INGEST_JPEG_QUALITY, thumbnail_side=settings.INGEST_THUMBNAIL_SIDE
        )
        self.image_limits = ImageLimits(
            max_bytes=settings.INGEST_MAX_IMAGE_BYTES, max_pixels=settings.INGEST_MAX_IMAGE_PIXELS
        )

    def _store(self, prepared: PreparedAsset, name: str, **extra: Any) -> bool:
        asset, created = services.asset_add(
            project=self.project, prepared=prepared, original_name=name, created_by=self.job.created_by, **extra
        )
        if created:
            self.report.added += 1
        else:
            self.report.duplicates += 1
        return created

    def image(self, data: bytes, name: str, unrecognised: str = "") -> None:
        """Decode once, store or refuse; `unrecognised` replaces the reason for non-images."""
        try:
            decoded = decode_image(data, self.image_limits)
        except ImageRejected as exc:
            reason = unrecognised if unrecognised and exc.code == "not_an_image" else exc.message
            self.report.outcome(name, "refused", reason)
            return
        created = self._store(prepare_asset(decoded.image, self.encoding), name, kind=AssetKind.IMAGE)
        self.report.outcome(name, "added" if created else "duplicate", "" if created else "already in the project")

    def archive(self, path: Path, name: str) -> None:
        members = iter_archive_members(path, ArchiveLimits(max_member_bytes=settings.INGEST_MAX_IMAGE_BYTES))
        try:
            for member in members:  # one member in memory at a time
                label = f"{name} › {services.display_name(member.name)}"
                if member.error:
                    self.report.outcome(label, "refused", member.error)
                else:
                    self.image(member.data, label)
        except ArchiveRejected as exc:  # raised before the first member
            self.report.outcome(name, "refused", str(exc))

    def video(self, path: Path, name: str, progress_span: tuple[float, float]) -> None:
        config = FrameSamplingConfig(
            every_seconds=self.every,
            jpeg_quality=settings.INGEST_JPEG_QUALITY,
            thumbnail_side=settings.INGEST_THUMBNAIL_SIDE,
            decode_timeout_seconds=settings.INGEST_DECODE_TIMEOUT_SECONDS,
            max_duration_seconds=settings.INGEST_MAX_VIDEO_SECONDS,
            probe_timeout_seconds=settings.INGEST_PROBE_TIMEOUT_SECONDS,
            decoder_module=settings.INGEST_DECODER_MODULE,
        )
        try:
            info = probe_video(path, config)
        except (VideoRejected, VideoUnreadable) as exc:
            self.report.outcome(name, "refused", str(exc))
            return
        sha256 = services.file_sha256(path)
        video = Video.objects.filter(project=self.project, sha256=sha256).first()
        if video is None:
            video = services.video_add(
                project=self.project,
                local_path=path,
                sha256=sha256,
                original_name=name,
                info=info,
                sample_every_seconds=self.every,
                created_by=self.job.created_by,
            )
        expected = max(1, math.ceil(info.duration_seconds / self.every - 1e-6))
        added_before, duplicates_before = self.report.added, self.report.duplicates
        start, span = progress_span

        def store_frame(frame: SampledFrame) -> None:
            prepared = PreparedAsset(
                sha256=frame.sha256,
                width=frame.width,
                height=frame.height,
                jpeg=frame.jpeg_path.read_bytes(),
                thumbnail_webp=frame.thumbnail_path.read_bytes(),
            )
            frame.jpeg_path.unlink()
            frame.thumbnail_path.unlink()
            label = f"{video.original_name} @ {frame.timestamp_seconds:.2f}s"
            self._store(prepared, label, kind=AssetKind.FRAME, video=video, timestamp_seconds=frame.timestamp_seconds)
            done = frame.index + 1
            self.ctx.progress(start + span * min(done / expected, 1.0), f"{name}: frame {done} of ~{expected}")

        with tempfile.TemporaryDirectory(prefix="vive-frames-") as frames_dir:
            try:
                sample_frames(path, Path(frames_dir), config, on_frame=store_frame)
            except (VideoRejected, VideoUnreadable) as exc:
                added = self.report.added - added_before
                self.report.outcome(name, "refused", f"{exc} ({added} frames were kept)" if added else str(exc))
                if video.frames.exists():
                    services.video_frames_counted(video=video)
                else:
                    services.video_delete(video=video)  # nothing came of it: leave nothing behind
                return
        services.video_frames_counted(video=video)
        added = self.report.added - added_before
        duplicates = self.report.duplicates - duplicates_before
        if added == 0 and duplicates:
            self.report.outcome(name, "duplicate", f"all {duplicates} sampled frames are already in the project")
        else:
            reason = f"{added} frames added" + (f", {duplicates} duplicates skipped" if duplicates else "")
            self.report.outcome(name, "added", reason, frames_added=added, video_id=video.id)

    def file(self, key: str, name: str, progress_span: tuple[float, float]) -> None:
        with _local_copy(key) as path:
            with open(path, "rb") as handle:
                head = handle.read(8)
            if head[:4] == b"PK\x03\x04":
                self.archive(path, name)
            elif sniff_container(path) is not None:
                self.video(path, name, progress_span)
            elif name.lower().endswith(VIDEO_EXTENSIONS):
                self.report.outcome(
                    name,
                    "refused",
                    "The name says video but the content is not an MP4/MOV/MKV/WebM container "
                    "(a playlist or another format renamed?).",
                )
            elif path.stat().st_size > self.image_limits.max_bytes:
                self.report.outcome(name, "refused", f"Over the {self.image_limits.max_bytes:,}-byte limit for images.")
            else:
                self.image(path.read_bytes(), name, unrecognised=UNRECOGNISED)


def _delete_staged_uploads(job: Job) -> None:
    """Once the ingest has ended (succeeded, failed, cancelled, or given up on by the sweeper). Not
    in the handler's `finally`: an attempt the sweeper superseded would delete the uploads that the
    attempt now owning the job is reading."""
    services.staging_delete(staging_id=job.params["staging_id"])


@job_kind(
    name="ingest",
    label="Ingest footage",
    queue="cpu",
    clean_params=_clean_params,
    cleanup=_delete_staged_uploads,
    produces=("the project's frames", "media:browser", None),
)
def ingest(job: Job, ctx: JobContext) -> dict[str, Any]:
    ingester = _Ingester(job, ctx)
    for refused in job.params.get("refused", []):
        ingester.report.outcome(refused["name"], "refused", refused["reason"])
    files = job.params["files"]
    for index, entry in enumerate(files):
        span = (index / len(files), 1 / len(files))
        ctx.progress(span[0], f"{entry['name']} ({index + 1} of {len(files)})")
        try:
            ingester.file(entry["key"], entry["name"], span)
        except (JobCancelled, JobSuperseded):
            raise  # a cancel, or another attempt owns the job now: not one file's problem
        except Exception as exc:  # one file's surprise must not cost the rest of the batch
            logger.exception("Ingesting %s failed", entry["name"])
            ingester.report.outcome(entry["name"], "refused", f"Unexpected error: {type(exc).__name__}: {exc}")
    report = ingester.report
    ctx.log(f"{report.added} added, {report.duplicates} duplicates, {report.refused} refused")
    return report.as_result()
