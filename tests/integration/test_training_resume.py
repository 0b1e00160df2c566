"""Fine-tuning in a real gpu-queue worker: SIGKILL after epoch 2, the sweeper re-queues the job, a
new worker resumes from the epoch-2 checkpoint and ends where an uninterrupted run ends."""

import time
from pathlib import Path

import pytest

from apps.jobs import services as job_services
from apps.jobs.models import Job, JobStatus
from apps.jobs.runner import job_execute
from apps.training.models import TrainingEpoch, TrainingStep
from apps.training.services import training_run_start
from tests.apps.training.world import labelled_project
from tests.integration.test_worker_kill import _kill, _wait_for

pytestmark = pytest.mark.integration
PARAMS = {"epochs": 4, "batch_size": 2, "learning_rate": 1e-3, "rank": 4, "alpha": 8, "seed": 3}


def test_a_run_killed_after_epoch_2_resumes_at_epoch_3_and_matches_an_uninterrupted_run(
    clean_queue,
    workers,
    settings,
    tmp_path,
    role_groups,  # noqa: F811
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

    assert job_services.jobs_sweep(stale_after=1.0)["requeued"] == [run.job_id]
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
