"""A real Celery worker process, the configured broker (Redis in CI, the filesystem broker on a
bare machine) and the test database: SIGKILL mid-job must never leave a job stuck in running."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.jobs import services
from apps.jobs.models import Job, JobStatus
from vivecaption_site.celery import app as celery_app

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_worker(
    name: str, log: Path, queue: str = "cpu", extra_env: dict | None = None, max_tasks_per_child: int | None = None
) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vivecaption_site.settings.test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "VIVE_VAR_DIR": str(settings.VAR_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "JOB_HEARTBEAT_SECONDS": "0.3",
        **(extra_env or {}),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "vivecaption_site", "worker", "-Q", queue, "-c", "1",
        "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    ]  # fmt: skip
    if max_tasks_per_child:  # as the GPU workers run: every task in a fresh pool child
        command += ["--max-tasks-per-child", str(max_tasks_per_child)]
    # Own session: SIGKILL goes to the whole worker (main process and its pool child), like an OOM kill.
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _kill(worker: subprocess.Popen) -> None:
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    worker.wait(timeout=10)


def worker_pid(job: Job) -> int:
    """The pid of the process that claimed the job (the pool child), as Job.worker names it."""
    return int(job.worker.rsplit("pid ", 1)[1].rstrip(")"))


def _wait_for(job_id: int, condition, timeout: float, log: Path) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(id=job_id)
        if condition(job):
            return job
        time.sleep(0.2)
    raise AssertionError(
        f"timed out; job is {Job.objects.get(id=job_id).__dict__}\nworker log:\n{log.read_text()[-3000:]}"
    )


@pytest.fixture
def clean_queue(transactional_db):
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in ("cpu", "gpu"):
            channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            channel.queue_purge(queue)


@pytest.fixture
def workers(tmp_path):
    started: list[subprocess.Popen] = []

    def start(name: str, **options) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{name}.log"
        started.append(_start_worker(name, log, **options))
        return started[-1], log

    yield start
    for worker in started:
        if worker.poll() is None:
            _kill(worker)


def _launch(project, lead, steps=30) -> Job:
    return services.job_create(
        kind="smoke", project=project, created_by=lead, params={"steps": steps, "step_seconds": 0.3}
    )


def _kill_mid_job(job: Job, workers) -> None:
    worker, log = workers("doomed")
    _wait_for(job.id, lambda j: j.status == JobStatus.RUNNING and j.progress >= 0.1, 90, log)
    _kill(worker)
    time.sleep(1.5)  # no heartbeat arrives any more
    assert Job.objects.get(id=job.id).status == JobStatus.RUNNING  # until the sweeper looks


def test_sigkilled_job_is_requeued_and_reruns_to_success(clean_queue, workers, project, lead):
    job = _launch(project, lead)
    _kill_mid_job(job, workers)

    outcome = services.jobs_sweep(stale_after=1.0)
    assert outcome["requeued"] == [job.id]
    assert Job.objects.get(id=job.id).status == JobStatus.QUEUED

    _, log = workers("rescuer")
    job = _wait_for(job.id, lambda j: j.is_finished, 120, log)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 2 and job.result["steps_done"] == 30


def tiny_detector_world(project, settings, tmp_path, frames: int):
    """A roster of one, `frames` distinct frames and the tiny detector (batch 1: a chunk is 8
    frames), built here once for the workers; returns (assets, detector, the workers' env)."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from apps.media.models import AssetKind
    from apps.media.services import asset_add
    from apps.modelhub.models import ModelVersion
    from apps.modelhub.services import model_versions_ensure
    from apps.projects.services import character_create, reference_image_add
    from tests.factories import png_bytes
    from workers.media.assets import prepare_asset
    from workers.vlm.tiny import build_tiny_qwen2_5_vl

    models_dir = tmp_path / "models"
    build_tiny_qwen2_5_vl(models_dir / "tiny" / "qwen2_5_vl")  # built once, here, not in each worker
    settings.MODELS_DIR, settings.MODEL_PROFILE = models_dir, "tiny"
    character = character_create(project=project, name="Ellie", description="A red blob.")
    reference_image_add(character=character, upload=SimpleUploadedFile("e.png", png_bytes((64, 64))))
    assets = [
        asset_add(
            project=project, prepared=prepare_asset(Image.new("RGB", (96, 64), (i * 5, 90, 200))), kind=AssetKind.FRAME
        )[0]
        for i in range(frames)
    ]
    assert len({a.id for a in assets}) == frames  # distinct pixels: none merged as a duplicate
    model_versions_ensure(project=project)
    detector = ModelVersion.objects.get(project=project, role="detector", is_default=True)
    detector.settings = {"batch_size": 1, "max_new_tokens": 64}
    detector.save()
    return assets, detector, {"MODELS_DIR": str(models_dir), "MODEL_PROFILE": "tiny"}


def test_a_detection_run_killed_mid_way_finishes_on_retry_without_redoing_frames(
    clean_queue, workers, project, lead, settings, tmp_path
):
    from apps.captioning.models import Detection
    from apps.captioning.services import detection_run_start

    assets, detector, env = tiny_detector_world(project, settings, tmp_path, frames=30)
    run = detection_run_start(
        project=project, model_version=detector, asset_ids=[a.id for a in assets], created_by=lead
    )

    worker, log = workers("doomed-gpu", queue="gpu", extra_env=env)
    _wait_for(run.job_id, lambda j: Detection.objects.filter(run=run).count() >= 3, 120, log)
    _kill(worker)
    before = {d.asset_id: d.id for d in Detection.objects.filter(run=run)}
    assert 3 <= len(before) < 30
    time.sleep(1.5)
    assert services.jobs_sweep(stale_after=1.0)["requeued"] == [run.job_id]

    _, log = workers("rescuer-gpu", queue="gpu", extra_env=env)
    job = _wait_for(run.job_id, lambda j: j.is_finished, 180, log)
    assert job.status == JobStatus.SUCCEEDED, job.error
    after = {d.asset_id: d.id for d in Detection.objects.filter(run=run)}
    assert len(after) == 30 and job.attempts == 2
    assert all(after[asset_id] == detection_id for asset_id, detection_id in before.items())  # not redone


def test_embedding_runs_in_a_real_worker_process(clean_queue, workers, project, lead, settings, tmp_path):
    """Celery's prefork children are daemonic: the embed job decodes on threads there (no processes)."""
    from PIL import Image

    from apps.curation.services import embedding_start
    from apps.media.models import AssetKind
    from apps.media.services import asset_add
    from workers.media.assets import prepare_asset
    from workers.vision.tiny import build_tiny_clip

    models_dir = tmp_path / "models"
    build_tiny_clip(models_dir / "tiny" / "clip")
    for index in range(6):
        image = Image.new("RGB", (96, 64), (index * 30, 90, 200))
        asset_add(project=project, prepared=prepare_asset(image), kind=AssetKind.FRAME)
    job = embedding_start(project=project, created_by=lead)
    env = {"MODELS_DIR": str(models_dir), "MODEL_PROFILE": "tiny", "EMBED_NUM_WORKERS": "2"}
    _, log = workers("embedder", extra_env=env)
    job = _wait_for(job.id, lambda j: j.is_finished, 120, log)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["embedded"] == 6
