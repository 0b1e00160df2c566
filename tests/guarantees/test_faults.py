"""QUALITY.md, faults (items 12–18), and the fault injection of issue #18: real Celery workers
(processes of their own, SIGKILLed as an OOM kill would), the configured broker and database
(Redis and PostgreSQL in CI's first pass, the filesystem broker and SQLite in its second), a real
Label Studio. Each ends with no job lost, none stuck, and the same result as without the fault."""

import sqlite3
import time
from pathlib import Path

import pytest
from django.db import connection

from apps.captioning.models import Caption, CaptionPipeline
from apps.captioning.services import caption_run_start
from apps.jobs import services
from apps.jobs.models import Job, JobStatus
from apps.jobs.runner import job_execute
from apps.labeling import services as labeling_services
from apps.modelhub.models import ModelVersion
from apps.training.models import TrainingEpoch, TrainingStep
from apps.training.services import training_run_start
from tests.apps.labeling.test_faults import _remote_task_count, _start
from tests.apps.labeling.world import labeling_world
from tests.apps.training.world import labelled_project
from tests.factories import UserFactory
from tests.integration.test_worker_kill import (
    _kill,
    _kill_mid_job,
    _launch,
    _wait_for,
    tiny_detector_world,
    worker_pid,
)
from tests.labelstudio import free_port
from vivecaption_site.celery import app as celery_app

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
PARAMS = {"epochs": 4, "batch_size": 2, "learning_rate": 1e-3, "rank": 4, "alpha": 8, "seed": 3}


# ---------------------------------------------------------------- 12. SIGKILL mid-training


def test_12_worker_sigkilled_mid_training_resumes_from_its_last_checkpoint_and_ends_as_an_unbroken_run(
    clean_queue,
    workers,
    settings,
    tmp_path,
    role_groups,
):
    settings.MODELS_DIR = tmp_path / "models"
    worker_env = {"MODELS_DIR": str(settings.MODELS_DIR)}
    _, labeling_project, detector, _ = labelled_project(frames=10)

    reference = training_run_start(
        base_version=detector, labeling_project=labeling_project, created_by=None, params=PARAMS, enqueue=False
    )
    job_execute(reference.job_id)
    assert Job.objects.get(id=reference.job_id).status == JobStatus.SUCCEEDED

    run = training_run_start(base_version=detector, labeling_project=labeling_project, created_by=None, params=PARAMS)
    doomed, log = workers("doomed-trainer", queue="gpu", extra_env=worker_env)
    latest = Path(run.output_dir) / "checkpoints" / "LATEST"
    deadline = time.monotonic() + 300
    # 8 training frames, batch 2: epoch 2 ends at step 8, and its checkpoint is then committed.
    while not (latest.exists() and latest.read_text().strip() == "step-0000008"):
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.02)
    _kill(doomed)
    assert latest.read_text().strip() == "step-0000008"  # killed during epoch 3, before its checkpoint
    assert TrainingStep.objects.filter(run=run).count() < 12
    time.sleep(1.5)

    assert services.jobs_sweep(stale_after=1.0)["requeued"] == [run.job_id]
    _, rescue_log = workers("rescuer-trainer", queue="gpu", extra_env=worker_env)
    job = _wait_for(run.job_id, lambda j: j.is_finished, 300, rescue_log)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert "Resuming from checkpoint step-0000008" in job.log

    ours = {row.epoch: row for row in TrainingEpoch.objects.filter(run=run)}
    theirs = {row.epoch: row for row in TrainingEpoch.objects.filter(run=reference)}
    assert sorted(ours) == sorted(theirs) == [0, 1, 2, 3, 4]
    for epoch in (3, 4):
        assert ours[epoch].predictions == theirs[epoch].predictions
        assert ours[epoch].sample_f1 == theirs[epoch].sample_f1
        assert ours[epoch].val_loss == pytest.approx(theirs[epoch].val_loss, rel=1e-5, abs=1e-6)
    losses = dict(TrainingStep.objects.filter(run=run).values_list("step", "loss"))
    expected = dict(TrainingStep.objects.filter(run=reference).values_list("step", "loss"))
    assert len(expected) >= 4 * 4 and losses.keys() == expected.keys()  # every step of 4+ epochs
    assert all(losses[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6) for step in expected)


def test_12_worker_sigkilled_with_no_attempt_left_fails_the_job_with_the_reason(
    clean_queue, workers, project, lead, settings
):
    settings.JOB_MAX_ATTEMPTS = 1
    job = _launch(project, lead)
    _kill_mid_job(job, workers)

    assert services.jobs_sweep(stale_after=1.0)["failed"] == [job.id]
    job = Job.objects.get(id=job.id)
    assert job.status == JobStatus.FAILED and job.attempts == 1
    assert "stopped responding" in job.error and "after 1 of 1 attempts" in job.error


# ---------------------------------------------------------------- 13. longer than the visibility timeout


def test_13_job_longer_than_the_brokers_visibility_timeout_runs_once(clean_queue, workers, project, lead, broker):
    """Redis gives an unacknowledged message to another worker once the visibility timeout has
    passed (acks_late: a message is acknowledged when its job ends). The second delivery finds the
    job claimed in the database and is skipped. The filesystem broker never redelivers."""
    env = {"CELERY_VISIBILITY_TIMEOUT": "1"}
    job = _launch(project, lead, steps=25)  # 7.5 s, many timeouts long
    _, first_log = workers("first", extra_env=env)
    _wait_for(job.id, lambda j: j.status == JobStatus.RUNNING, 90, first_log)
    _, second_log = workers("second", extra_env=env)
    job = _wait_for(job.id, lambda j: j.is_finished, 120, first_log)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 1 and job.result["steps_done"] == 25
    if broker == "redis":
        deadline = time.monotonic() + 20
        while "not claimable" not in second_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "not claimable" in second_log.read_text(), second_log.read_text()[-2000:]  # redelivered, skipped


# ---------------------------------------------------------------- 14. cancel


def test_14_lead_cancel_stops_a_running_job_at_its_next_step(clean_queue, workers, project, lead):
    job = _launch(project, lead, steps=200)
    _, log = workers("steady")
    _wait_for(job.id, lambda j: j.status == JobStatus.RUNNING and j.progress > 0, 90, log)
    services.job_cancel(job=job)
    job = _wait_for(job.id, lambda j: j.is_finished, 30, log)
    assert job.status == JobStatus.CANCELLED and job.progress < 1.0


def test_14_lead_cancel_of_fine_tuning_stops_within_a_step_keeps_a_checkpoint_and_frees_the_worker(
    clean_queue, workers, settings, tmp_path, role_groups
):
    """On a GPU worker (a fresh process per task), the cancelled run's process exits with what it
    held; the worker takes the next job."""
    import psutil

    settings.MODELS_DIR = tmp_path / "models"
    _, labeling_project, detector, _ = labelled_project(frames=10)
    lead = UserFactory(role="lead")
    params = {**PARAMS, "epochs": 50}
    run = training_run_start(base_version=detector, labeling_project=labeling_project, created_by=lead, params=params)
    env = {"MODELS_DIR": str(settings.MODELS_DIR)}
    _, log = workers("trainer", queue="gpu", extra_env=env, max_tasks_per_child=1)
    _wait_for(run.job_id, lambda j: TrainingStep.objects.filter(run=run).count() >= 2, 300, log)
    services.job_cancel(job=Job.objects.get(id=run.job_id), cancelled_by=lead)
    steps_at_cancel = TrainingStep.objects.filter(run=run).count()
    job = _wait_for(run.job_id, lambda j: j.is_finished, 120, log)
    assert job.status == JobStatus.CANCELLED
    assert TrainingStep.objects.filter(run=run).count() <= steps_at_cancel + 2  # stopped at the next step
    checkpoints = sorted(Path(run.output_dir, "checkpoints").glob("step-*"))
    assert checkpoints and (checkpoints[-1] / "adapter" / "adapter_config.json").exists()
    trainer_pid = worker_pid(job)
    deadline = time.monotonic() + 30
    while psutil.pid_exists(trainer_pid) and psutil.Process(trainer_pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the cancelled run's process did not exit"
        time.sleep(0.1)
    after = _launch(labeling_project.project, lead, steps=2)  # the worker is free for the next job
    Job.objects.filter(id=after.id).update(queue="gpu")
    services.job_enqueue(job_id=after.id)
    assert _wait_for(after.id, lambda j: j.is_finished, 60, log).status == JobStatus.SUCCEEDED


# ---------------------------------------------------------------- 15. broker down at enqueue


def _queued_messages(queue: str) -> int:
    from amqp.exceptions import ChannelError

    with celery_app.connection_for_write() as conn:
        try:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
        except ChannelError:  # Redis keeps no empty queue: "no queue 'cpu'" means nothing waits in it
            return 0


def _forget_broker_connections() -> None:
    """The app's pools of broker connections, made anew from its settings at the next send."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker_down(broker, tmp_path, monkeypatch):
    """The app's broker unreachable for what the test does inside `with broker_down():`: Redis at a
    port nobody listens on, the filesystem broker's folder gone. The real transport fails."""
    from contextlib import contextmanager

    @contextmanager
    def down():
        with monkeypatch.context() as patch:
            if broker == "redis":  # Celery reads CELERY_BROKER_URL from the environment before its settings
                unreachable = f"redis://127.0.0.1:{free_port()}/0"
                patch.setenv("CELERY_BROKER_URL", unreachable)
                patch.setitem(celery_app.conf, "broker_url", unreachable)
            else:
                missing = str(tmp_path / "no-broker-here")
                options = {**celery_app.conf.broker_transport_options, "data_folder_in": missing}
                patch.setitem(celery_app.conf, "broker_transport_options", {**options, "data_folder_out": missing})
            _forget_broker_connections()
            try:
                yield
            finally:
                _forget_broker_connections()

    return down


def test_15_broker_down_at_enqueue_leaves_the_job_queued_and_the_sweeper_sends_it(
    clean_queue, workers, project, lead, broker_down
):
    with broker_down():
        job = _launch(project, lead, steps=3)  # the message is sent after the commit: it fails here
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and "Broker unreachable" in job.message
    assert "broker unreachable: " in job.log and "closed pool" not in job.log  # the transport's own error
    assert _queued_messages("cpu") == 0

    assert services.jobs_sweep(reenqueue_after=0)["reenqueued"] == [job.id], Job.objects.get(id=job.id).log
    _, log = workers("after-the-outage")
    job = _wait_for(job.id, lambda j: j.is_finished, 90, log)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 1 and job.result["steps_done"] == 3


def test_15_transaction_rolled_back_sends_no_task(clean_queue, project, lead):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        _launch(project, lead, steps=3)
        raise RuntimeError("the request failed after creating the job")
    assert not Job.objects.exists()
    assert _queued_messages("cpu") == 0  # no orphan message for a job that does not exist


# ---------------------------------------------------------------- 16. database connection dropped


def _drop_the_workers_database_connections(seconds: float) -> None:
    """PostgreSQL: terminate every other session on the test database (the worker's), as a server
    restart or a failover does. SQLite has no connection to drop: hold its write lock past the
    worker's lock timeout instead, so its writes fail with OperationalError as a dropped one's do."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                time.sleep(0.2)
        return
    holder = sqlite3.connect(connection.settings_dict["NAME"], timeout=30)
    holder.execute("BEGIN EXCLUSIVE")
    time.sleep(seconds)
    holder.rollback()
    holder.close()


def test_16_database_connection_dropped_during_a_long_job_still_writes_its_final_status(
    clean_queue, workers, project, lead
):
    job = _launch(project, lead, steps=20)  # 6 s
    _, log = workers("steady", extra_env={"SQLITE_LOCK_TIMEOUT_SECONDS": "0.5"})
    _wait_for(job.id, lambda j: j.status == JobStatus.RUNNING and j.progress >= 0.2, 90, log)
    _drop_the_workers_database_connections(seconds=2.0)
    job = _wait_for(job.id, lambda j: j.is_finished, 90, log)
    assert job.status == JobStatus.SUCCEEDED, (job.error, log.read_text()[-3000:])
    assert job.attempts == 1 and job.result["steps_done"] == 20  # as without the fault
    assert "progress not recorded, the database is unavailable" in log.read_text()  # the fault did happen


# ---------------------------------------------------------------- 17. Label Studio down


def test_17_label_studio_down_during_a_push_shows_sync_pending_and_the_retry_completes(
    ls_settings, role_groups, client
):
    world = labeling_world(frames=4, name="Down world")
    labeling_project = _start(world)
    real_url = ls_settings.LABEL_STUDIO_URL
    ls_settings.LABEL_STUDIO_URL = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    ls_settings.LABEL_STUDIO_RETRIES = 2
    job = Job.objects.get(id=_executed(labeling_project.push_job_id))
    assert job.status == "failed" and "did not answer" in job.error
    labeling_project.refresh_from_db()
    assert labeling_project.status == "failed" and labeling_project.sync_pending
    assert "did not answer" in labeling_project.sync_error

    lead = UserFactory(role="lead")
    labeling_project.project.memberships.create(user=lead)
    client.force_login(lead)
    page = client.get(f"/projects/{world.project.id}/labeling/{labeling_project.id}/").content.decode()
    assert "Sync pending" in page and "nothing is lost" in page

    # Label Studio is back: the beat retries the push that failed while it was away.
    ls_settings.LABEL_STUDIO_URL = real_url
    (retry_job_id,) = labeling_services.labeling_reconcile_all()
    assert Job.objects.get(id=_executed(retry_job_id)).status == "succeeded"
    labeling_project.refresh_from_db()
    assert labeling_project.status == "ready" and not labeling_project.sync_error
    assert labeling_project.tasks.count() == 4 == _remote_task_count(labeling_project)
    assert labeling_services.labeling_reconcile_all() != []  # ready now: the beat syncs it from here on


def _executed(job_id: int) -> int:
    job_execute(job_id)
    return job_id


# ---------------------------------------------------------------- 18. memory across model jobs


def _idle_worker_rss_mb(pid: int, used_child: int) -> float:
    """Resident memory of the worker and its pool child, in MB, once the child that ran the job has
    exited and its fresh replacement is the only one."""
    import psutil

    root = psutil.Process(pid)
    deadline = time.monotonic() + 60
    while True:
        children = root.children(recursive=True)
        if len(children) == 1 and children[0].pid != used_child:
            return sum(p.memory_info().rss for p in [root, *children]) / 2**20
        assert time.monotonic() < deadline, f"the pool child was not replaced: {children}"
        time.sleep(0.1)


def test_18_model_jobs_in_a_row_on_one_worker_leave_its_memory_at_the_baseline(
    clean_queue, workers, project, lead, settings, tmp_path
):
    """The GPU workers run each task in a fresh pool child (--max-tasks-per-child 1): whatever a
    model job held, CUDA memory included, goes with its process. Measured here on the CPU as the
    worker's resident memory; on a GPU the same setting frees the device memory (bench/RESULTS.md)."""
    from apps.captioning.services import detection_run_start

    assets, detector, env = tiny_detector_world(project, settings, tmp_path, frames=4)
    worker, log = workers("gpu-like", queue="gpu", extra_env=env, max_tasks_per_child=1)
    readings = []
    for _ in range(4):
        run = detection_run_start(
            project=project, model_version=detector, asset_ids=[a.id for a in assets], created_by=lead
        )
        job = _wait_for(run.job_id, lambda j: j.is_finished, 180, log)
        assert job.status == JobStatus.SUCCEEDED, job.error
        readings.append(_idle_worker_rss_mb(worker.pid, used_child=worker_pid(job)))
    print(f"worker memory after each detection job (MB): {[round(r) for r in readings]}")
    baseline = readings[0]
    assert all(reading < baseline + 64 for reading in readings[1:]), readings  # no growth job over job


# ---------------------------------------------------------------- fault injection: SIGKILL mid-captioning


def test_fault_worker_sigkilled_mid_captioning_finishes_every_frame_once_with_the_captions_of_an_unbroken_run(
    clean_queue, workers, project, lead, settings, tmp_path
):
    from workers.vlm.tiny import build_tiny_internvl

    assets, _, env = tiny_detector_world(project, settings, tmp_path, frames=24)
    # A toy captioner whose greedy answers are not empty and differ by frame (tests/workers/vlm/conftest.py).
    build_tiny_internvl(settings.MODELS_DIR / "tiny" / "internvl", init_std=0.2)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    captioner.settings = {**captioner.settings, "batch_size": 1, "max_new_tokens": 24}
    captioner.save()

    def start():
        return caption_run_start(
            project=project, model_version=captioner, pipeline=CaptionPipeline.NO_DETECTION,
            asset_ids=[a.id for a in assets], created_by=lead,
        )  # fmt: skip

    unbroken = start()
    steady, log = workers("unbroken", queue="gpu", extra_env=env)
    assert _wait_for(unbroken.job_id, lambda j: j.is_finished, 300, log).status == JobStatus.SUCCEEDED
    expected = dict(Caption.objects.filter(run=unbroken).values_list("asset_id", "raw_text"))
    assert len(expected) == 24 and len(set(expected.values())) > 1 and all(expected.values())
    _kill(steady)

    run = start()
    doomed, log = workers("doomed-captioner", queue="gpu", extra_env=env)
    _wait_for(run.job_id, lambda j: Caption.objects.filter(run=run).count() >= 3, 300, log)
    _kill(doomed)
    before = dict(Caption.objects.filter(run=run).values_list("asset_id", "id"))
    assert 3 <= len(before) < 24
    time.sleep(1.5)
    assert services.jobs_sweep(stale_after=1.0)["requeued"] == [run.job_id]
    _, log = workers("rescuer-captioner", queue="gpu", extra_env=env)
    job = _wait_for(run.job_id, lambda j: j.is_finished, 300, log)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2, job.error
    captions = Caption.objects.filter(run=run)
    assert captions.count() == 24  # every frame once
    assert all(dict(captions.values_list("asset_id", "id"))[a] == i for a, i in before.items())  # not redone
    assert dict(captions.values_list("asset_id", "raw_text")) == expected


# ---------------------------------------------------------------- fault injection: SIGKILL mid-export


def _captioned_frames(project, frames: int):
    """A caption run over `frames` distinct small frames, each caption naming its frame."""
    from PIL import Image

    from apps.captioning.models import CaptionRun
    from apps.captioning.services import run_answers_recount, run_frames_set
    from apps.media.models import AssetKind
    from apps.media.services import asset_add
    from apps.modelhub.services import model_versions_ensure
    from workers.media.assets import prepare_asset

    model_versions_ensure(project=project)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    assets = [
        asset_add(
            project=project, kind=AssetKind.FRAME,
            prepared=prepare_asset(Image.new("RGB", (64, 40), (i % 256, i // 256 * 40, 120))),
        )[0]
        for i in range(frames)
    ]  # fmt: skip
    run = CaptionRun.objects.create(project=project, model_version=captioner, pipeline="no_detection")
    run_frames_set(run=run, asset_ids=[a.id for a in assets])
    Caption.objects.bulk_create(
        Caption(
            run=run,
            asset=asset,
            ok=True,
            model_version_label="m",
            characters_given=[],
            fields={
                "scene": f"Frame {i}, a quiet street.",
                "background": "a street",
                "characters": [],
                "salient_objects": "a lamp",
            },
        )  # fmt: skip
        for i, asset in enumerate(assets)
    )
    run_answers_recount(run=run)
    return run


def _archive_files(export) -> dict[str, bytes]:
    """The archive's files by name, the manifest's per-export fields (id, time) left out."""
    import io
    import json
    import zipfile

    with export.archive.open("rb") as handle, zipfile.ZipFile(io.BytesIO(handle.read())) as archive:
        files = {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    for name in [n for n in files if n.endswith("metadata.json") or n.endswith("manifest.json")]:
        manifest = json.loads(files[name])
        for key in ("export_id", "created_at"):
            manifest.get("metadata", manifest).pop(key, None)
        files[name] = json.dumps(manifest, sort_keys=True).encode()
    return files


def test_fault_worker_sigkilled_mid_export_finishes_with_the_archive_of_an_unbroken_export(
    clean_queue, workers, project, lead
):
    from apps.exports.models import Export
    from apps.exports.services import export_start

    run = _captioned_frames(project, frames=900)

    def start():
        return export_start(project=project, created_by=lead, format="hf", source="run", caption_run=run)

    unbroken = start()
    job_execute(unbroken.job_id)
    unbroken.refresh_from_db()
    expected = _archive_files(unbroken)
    assert unbroken.frames == 900 and len(expected) > 900  # every image and its metadata

    export = start()
    doomed, log = workers("doomed-exporter")
    deadline = time.monotonic() + 120
    # The first progress report comes after 50 of the 900 frames: looked for often, so the kill
    # lands while the rest are still being written.
    while not Job.objects.filter(id=export.job_id, status=JobStatus.RUNNING, progress__gt=0).exists():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.02)
    _kill(doomed)
    assert Job.objects.get(id=export.job_id).status == JobStatus.RUNNING  # killed part way
    assert not Export.objects.get(id=export.id).archive  # nothing recorded before the archive is stored
    time.sleep(1.5)
    assert services.jobs_sweep(stale_after=1.0)["requeued"] == [export.job_id]
    _, log = workers("rescuer-exporter")
    job = _wait_for(export.job_id, lambda j: j.is_finished, 180, log)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2, job.error
    export.refresh_from_db()
    assert export.frames == 900 and _archive_files(export) == expected
