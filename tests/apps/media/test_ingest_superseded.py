"""An ingest attempt that the sweeper superseded (its heartbeat went stale while it still ran) stops
at once and touches nothing: the staged uploads belong to the attempt that owns the job now, and
only the attempt that ends the job cleans them up."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.jobs import services as job_services
from apps.jobs.models import Job, JobStatus
from apps.jobs.runner import JobContext, job_execute
from apps.media import services
from apps.media.models import Asset
from tests.media_files import image_bytes, make_video

pytestmark = pytest.mark.django_db(transaction=True)


def _staged(settings, staging_id: str) -> list[str]:
    folder = settings.MEDIA_ROOT / "staging" / staging_id
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _supersede_on_progress_call(monkeypatch, job_id: int, call: int) -> None:
    """At the `call`-th progress report of attempt 1, the sweeper finds the job stale (as if the
    worker had stalled past the stale window) and re-queues it for a new attempt."""
    real_progress = JobContext.progress
    calls = {"n": 0}

    def progress(self, fraction, message=""):
        if self.job_id == job_id and self.attempt == 1:
            calls["n"] += 1
            if calls["n"] == call:
                later = timezone.now() + timedelta(hours=1)
                assert job_services.jobs_sweep(now=later)["requeued"] == [job_id]
        return real_progress(self, fraction, message)

    monkeypatch.setattr(JobContext, "progress", progress)


@pytest.mark.parametrize(
    ("progress_call", "where"),
    [(1, "before the first file"), (3, "in the middle of a video's frames")],
)
def test_a_superseded_ingest_stops_at_once_and_leaves_the_uploads_to_the_new_attempt(
    project, lead, settings, tmp_path, monkeypatch, progress_call, where
):
    video = make_video(tmp_path / "clip.mp4", seconds=4, fps=2, size=(320, 180)).read_bytes()
    uploads = [SimpleUploadedFile("clip.mp4", video), SimpleUploadedFile("still.png", image_bytes((200, 30, 30)))]
    job = services.ingest_start(project=project, uploads=uploads, created_by=lead, enqueue=False)
    staging_id = job.params["staging_id"]
    staged = _staged(settings, staging_id)
    assert len(staged) == 2
    _supersede_on_progress_call(monkeypatch, job.id, progress_call)

    assert job_execute(job.id) == "superseded", where
    job.refresh_from_db()
    # The old attempt wrote nothing more: no per-file "refused" outcome, no result, no clean-up.
    assert job.status == JobStatus.QUEUED and job.result == {}
    assert _staged(settings, staging_id) == staged

    # The attempt that owns the job reads every upload, and cleans up once it has ended.
    assert job_execute(job.id) == "succeeded"
    job = Job.objects.get(id=job.id)
    assert job.attempts == 2 and job.result["refused"] == 0
    assert {f["name"]: f["outcome"] for f in job.result["files"]} == {"clip.mp4": "added", "still.png": "added"}
    assert Asset.objects.filter(project=project).count() == 5  # 4 frames + the still
    assert _staged(settings, staging_id) == []


def test_a_failed_or_given_up_ingest_still_cleans_its_uploads(project, lead, settings):
    uploads = [SimpleUploadedFile("still.png", image_bytes((20, 200, 30)))]
    job = services.ingest_start(project=project, uploads=uploads, created_by=lead, enqueue=False)
    staging_id = job.params["staging_id"]
    assert _staged(settings, staging_id)
    # Every attempt's worker died: the sweeper gives up, and the clean-up is its to do.
    Job.objects.filter(id=job.id).update(
        status=JobStatus.RUNNING, attempts=job.max_attempts, heartbeat_at=timezone.now()
    )
    assert job_services.jobs_sweep(now=timezone.now() + timedelta(hours=1))["failed"] == [job.id]
    assert _staged(settings, staging_id) == []

    cancelled = services.ingest_start(project=project, uploads=uploads, created_by=lead, enqueue=False)
    job_services.job_cancel(job=cancelled)
    assert _staged(settings, cancelled.params["staging_id"]) == []
