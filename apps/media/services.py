"""Writes for media: staging uploads, creating assets and videos (deduplicated by content)."""

import hashlib
import uuid
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from apps.core.errors import ApplicationError
from apps.jobs.models import Job
from apps.jobs.services import job_create
from apps.media.models import Asset, AssetKind, GroundTruthManifest, Video
from apps.projects.models import Project
from workers.media.assets import PreparedAsset
from workers.media.video import VideoInfo

STAGING_ROOT = "staging"


def display_name(name: str) -> str:
    """The uploader's file name, only ever shown to people: last path part, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return (cleaned or "unnamed")[:255]


def _stage(staging_id: str, index: int, content: File) -> str:
    key = default_storage.save(f"{STAGING_ROOT}/{staging_id}/{index:05d}.upload", content)
    if hasattr(content, "temporary_file_path"):
        # The storage moved this upload's temporary file into place: closed now, its closer finds
        # the file gone quietly, where garbage collection later would warn.
        content.close()
    return key


def ingest_start(
    *,
    project: Project,
    uploads: list[UploadedFile],
    created_by: User | None,
    sample_every_seconds: float = 1.0,
    refused: list[dict[str, str]] | None = None,
    enqueue: bool = True,
) -> Job:
    """Stage the uploaded files in storage and queue an ingest job for them.

    Nothing is decoded here (that is the worker's job); `refused` carries files the upload layer
    already turned away (e.g. over the size limit) so the job reports them with the rest.
    """
    if not uploads and not refused:
        raise ApplicationError("Choose at least one file to upload.", field="files")
    if not 0.04 <= sample_every_seconds <= 3600:
        raise ApplicationError("Sample every must be between 0.04 and 3600 seconds.", field="sample_every_seconds")
    staging_id = uuid.uuid4().hex
    files = []
    for index, upload in enumerate(uploads):
        key = _stage(staging_id, index, upload)
        files.append({"key": key, "name": display_name(upload.name or ""), "size": upload.size})
    return job_create(
        kind="ingest",
        project=project,
        created_by=created_by,
        params={
            "staging_id": staging_id,
            "files": files,
            "refused": refused or [],
            "sample_every_seconds": sample_every_seconds,
        },
        enqueue=enqueue,
    )


def ingest_start_from_paths(
    *,
    project: Project,
    paths: list[Path],
    created_by: User | None,
    sample_every_seconds: float = 1.0,
    enqueue: bool = True,
) -> Job:
    """Stage local files (folders are walked) for ingestion: the `ingest` command and the demo."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()))
        elif path.is_file():
            files.append(path)
        else:
            raise ApplicationError(f"No such file or folder: {path}")
    uploads = []
    handles = [open(path, "rb") for path in files]  # noqa: SIM115 — closed below
    try:
        for path, handle in zip(files, handles, strict=True):
            uploads.append(File(handle, name=path.name))
        return ingest_start(
            project=project,
            uploads=uploads,
            created_by=created_by,
            sample_every_seconds=sample_every_seconds,
            enqueue=enqueue,
        )
    finally:
        for handle in handles:
            handle.close()


def staging_delete(*, staging_id: str) -> None:
    folder = f"{STAGING_ROOT}/{staging_id}"
    try:
        _, names = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        default_storage.delete(f"{folder}/{name}")
    try:
        default_storage.delete(folder)
    except OSError:
        pass  # object stores have no folders


def asset_add(
    *,
    project: Project,
    prepared: PreparedAsset,
    kind: AssetKind,
    original_name: str = "",
    video: Video | None = None,
    timestamp_seconds: float | None = None,
    created_by: User | None = None,
) -> tuple[Asset, bool]:
    """Store a prepared picture as an Asset; an identical picture already in the project wins.

    Returns (asset, created). Files are written only for new assets and removed if the row fails.
    """
    existing = Asset.objects.filter(project=project, sha256=prepared.sha256).first()
    if existing is not None:
        return existing, False
    asset = Asset(
        project=project,
        kind=kind,
        sha256=prepared.sha256,
        width=prepared.width,
        height=prepared.height,
        original_name=display_name(original_name) if original_name else "",
        video=video,
        timestamp_seconds=timestamp_seconds,
        created_by=created_by,
    )
    asset.image.save(f"{prepared.sha256}.jpg", ContentFile(prepared.jpeg), save=False)
    asset.thumbnail.save(f"{prepared.sha256}.webp", ContentFile(prepared.thumbnail_webp), save=False)
    try:
        with transaction.atomic():
            asset.save()
    except IntegrityError:
        # Another worker stored the same picture a moment ago: keep theirs, drop our files.
        asset.image.delete(save=False)
        asset.thumbnail.delete(save=False)
        return Asset.objects.get(project=project, sha256=prepared.sha256), False
    except Exception:
        asset.image.delete(save=False)
        asset.thumbnail.delete(save=False)
        raise
    return asset, True


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def video_add(
    *,
    project: Project,
    local_path: Path,
    sha256: str,
    original_name: str,
    info: VideoInfo,
    sample_every_seconds: float,
    created_by: User | None,
) -> Video:
    video = Video(
        project=project,
        original_name=display_name(original_name),
        sha256=sha256,
        size_bytes=local_path.stat().st_size,
        container=info.container,
        codec=info.codec,
        width=info.width,
        height=info.height,
        duration_seconds=info.duration_seconds,
        fps=info.fps,
        sample_every_seconds=sample_every_seconds,
        created_by=created_by,
    )
    suffix = {"mov": ".mp4", "matroska": ".mkv"}.get(info.container.split(",")[0], ".video")
    with open(local_path, "rb") as handle:
        video.file.save(f"{sha256}{suffix}", File(handle), save=False)
    try:
        with transaction.atomic():
            video.save()
    except Exception:
        video.file.delete(save=False)
        raise
    return video


def video_delete(*, video: Video) -> None:
    storage, name = video.file.storage, video.file.name
    video.delete()
    storage.delete(name)


def video_frames_counted(*, video: Video) -> Video:
    video.frame_count = video.frames.count()
    video.save(update_fields=["frame_count", "updated_at"])
    return video


@transaction.atomic
def ground_truth_store(
    *, project: Project, name: str, data: dict[str, Any], video: Video | None = None
) -> GroundTruthManifest:
    manifest, _ = GroundTruthManifest.objects.update_or_create(
        project=project, name=name, defaults={"data": data, "video": video}
    )
    return manifest
