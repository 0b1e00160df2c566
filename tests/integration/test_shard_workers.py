"""Three real GPU-queue workers share one detection run split into shards; one of them is
SIGKILLed mid-shard. The sweeper re-queues its shard, the others finish the run, and every frame
is detected exactly once (PostgreSQL + Redis in CI, SQLite + the filesystem broker on a bare machine)."""

import time
from pathlib import Path

import pytest

from apps.captioning.models import Detection
from apps.captioning.services import detection_run_start
from apps.jobs import services
from apps.jobs.models import Job, JobStatus
from tests.integration.test_worker_kill import _kill, _wait_for, tiny_detector_world, worker_pid

pytestmark = pytest.mark.integration
FRAMES, SHARD = 48, 16  # a shard is two chunks of 8 frames (batch 1): it can be caught between them


def _parent_pid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no parent pid for {pid}")


def _worker_of(shard: Job, workers: dict) -> str:
    """Which of our workers runs the shard: its pool child's pid is in Job.worker."""
    child_pid = worker_pid(shard)
    parent = _parent_pid(child_pid)
    return next(name for name, (process, _) in workers.items() if process.pid in (child_pid, parent))


def _frames_done(run, shard: Job) -> int:
    ids = run.frame_ids(shard.params["start"], shard.params["stop"])
    return Detection.objects.filter(run=run, asset_id__in=ids).count()


def test_three_workers_share_a_run_and_one_sigkilled_mid_shard_loses_no_frame(
    clean_queue, workers, project, lead, settings, tmp_path
):
    assets, detector, env = tiny_detector_world(project, settings, tmp_path, frames=FRAMES)
    env["RUN_SHARD_FRAMES"] = str(SHARD)
    started = {name: workers(name, queue="gpu", extra_env=env) for name in ("gpu-a", "gpu-b", "gpu-c")}
    logs = "\n".join(str(log) for _, log in started.values())
    run = detection_run_start(
        project=project, model_version=detector, asset_ids=[a.id for a in assets], created_by=lead
    )

    # Wait for a shard caught mid-way: running, some of its frames stored, not all.
    deadline, victim = time.monotonic() + 240, None
    while victim is None and time.monotonic() < deadline:
        for shard in Job.objects.filter(parent_id=run.job_id, status=JobStatus.RUNNING):
            if 1 <= _frames_done(run, shard) < SHARD:
                victim = shard
                break
        time.sleep(0.05)
    assert victim is not None, f"no shard was caught mid-way; worker logs: {logs}"
    doomed = _worker_of(victim, started)
    _kill(started[doomed][0])
    before = {d.asset_id: d.id for d in Detection.objects.filter(run=run)}
    done_in_victim = _frames_done(run, victim)
    assert 1 <= done_in_victim < SHARD

    time.sleep(1.5)  # its heartbeat stops; the others' go on
    assert services.jobs_sweep(stale_after=1.0)["requeued"] == [victim.id]

    job = _wait_for(run.job_id, lambda j: j.is_finished, 300, started[next(n for n in started if n != doomed)][1])
    assert job.status == JobStatus.SUCCEEDED, job.error
    shards = list(Job.objects.filter(parent=job).order_by("id"))
    assert len(shards) == FRAMES // SHARD and all(s.status == JobStatus.SUCCEEDED for s in shards)
    assert Job.objects.get(id=victim.id).attempts == 2  # the killed shard ran again, elsewhere
    # every frame exactly once: one detection each, and none stored before the kill was redone
    after = {d.asset_id: d.id for d in Detection.objects.filter(run=run)}
    assert sorted(after) == sorted(a.id for a in assets) and Detection.objects.filter(run=run).count() == FRAMES
    assert all(after[asset_id] == detection_id for asset_id, detection_id in before.items())
    assert job.result["frames"] == FRAMES and job.result["shards"] == FRAMES // SHARD
    # the shards were spread: more than one worker process took some
    assert len({s.worker for s in shards}) >= 2
    assert job.progress == 1.0
