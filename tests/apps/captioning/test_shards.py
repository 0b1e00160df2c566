"""A run over more than RUN_SHARD_FRAMES frames is split into shards, each its own job; the run's
job sums them up once they have all ended. Here the shards run in this process (as `manage.py
detect` runs them); tests/integration/test_shard_workers.py runs them on three real workers."""

from types import SimpleNamespace

import pytest

from apps.captioning import services
from apps.captioning.models import Caption, CaptionPipeline, Detection
from apps.jobs.inline import job_run_tree
from apps.jobs.models import Job, JobStatus
from apps.jobs.services import job_cancel
from apps.modelhub.models import ModelRole
from tests.apps.captioning.test_runs import versions

pytestmark = pytest.mark.django_db(transaction=True)


def _detection_run(project, lead, assets, **options):
    return services.detection_run_start(
        project=project,
        model_version=versions(project, ModelRole.DETECTOR),
        asset_ids=[a.id for a in assets],
        created_by=lead,
        enqueue=False,
        **options,
    )


def test_a_run_larger_than_a_shard_is_split_and_every_frame_is_done_once(project, lead, roster_and_frames, settings):
    settings.RUN_SHARD_FRAMES = 2
    assets = roster_and_frames  # 5 frames: shards of 2, 2 and 1
    run = _detection_run(project, lead, assets)
    job = job_run_tree(run.job_id, poll_seconds=0.05)
    assert job.status == JobStatus.SUCCEEDED, job.error
    shards = list(Job.objects.filter(parent=job).order_by("id"))
    assert [(s.kind, s.params["start"], s.params["stop"]) for s in shards] == [
        ("detect_shard", 0, 2),
        ("detect_shard", 2, 4),
        ("detect_shard", 4, 5),
    ]
    assert all(s.status == JobStatus.SUCCEEDED and s.attempts == 1 for s in shards)
    assert [(s.parent_progress_from, s.parent_progress_to) for s in shards] == [(0.0, 0.4), (0.4, 0.8), (0.8, 1.0)]
    # each shard did its own frames, and only those
    assert [s.result["frames"] for s in shards] == [2, 2, 1]
    detections = Detection.objects.filter(run=run)
    assert sorted(detections.values_list("asset_id", flat=True)) == sorted(a.id for a in assets)
    assert job.result["frames"] == 5 and job.result["shards"] == 3 and job.progress == 1.0
    assert job.result["failed"] == detections.filter(ok=False).count()
    assert "split into 3 shards" in job.log and "all 3 shards done" in job.log
    run.refresh_from_db()  # the run's counts, kept as answers were stored: what its pages show
    assert (run.answered_count, run.failed_count) == (5, detections.filter(ok=False).count())

    # a detector → captioner run over the same frames is split the same way and gets each
    # frame's own detection
    run.refresh_from_db()
    captions = services.caption_run_start(
        project=project,
        model_version=versions(project, ModelRole.CAPTIONER),
        pipeline=CaptionPipeline.DETECTION,
        asset_ids=[a.id for a in assets],
        detection_run=run,
        created_by=lead,
        enqueue=False,
    )
    job = job_run_tree(captions.job_id, poll_seconds=0.05)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["frames"] == 5 and job.result["shards"] == 3
    for caption in Caption.objects.filter(run=captions):
        assert caption.characters_given == Detection.objects.get(run=run, asset_id=caption.asset_id).names
    # the job summed up the run's health once all its answers were in
    captions.refresh_from_db()
    assert captions.answered_count == 5 and captions.health["n"] == 5 and captions.health["answered"] == 5
    assert captions.health["adheres"] + len(captions.health["failing"]) == 5


def test_stored_answers_move_the_run_counts_once_and_a_duplicate_moves_nothing(project, lead, roster_and_frames):
    assets = roster_and_frames
    run = _detection_run(project, lead, assets)
    parsed = lambda ok: SimpleNamespace(names=["Ellie"], unknown=[], raw="x", flags=[], ok=ok, error="")  # noqa: E731
    first = [
        services.detection_answer(run=run, asset_id=a.id, parsed=parsed(i != 1), latency=0.1)
        for i, a in enumerate(assets[:3])
    ]
    services.answers_store(answers=first)
    run.refresh_from_db()
    assert (run.answered_count, run.failed_count) == (3, 1)
    again = [services.detection_answer(run=run, asset_id=a.id, parsed=parsed(True), latency=0.1) for a in assets[2:]]
    services.answers_store(answers=again)  # frame 3 again (a retried shard): kept once, counted once
    run.refresh_from_db()
    assert (run.answered_count, run.failed_count) == (5, 1) and Detection.objects.filter(run=run).count() == 5
    Detection.objects.filter(run=run, asset=assets[0]).delete()  # counts drift only outside the services…
    services.run_answers_recount(run=run)  # …and the run's end recounts them
    run.refresh_from_db()
    assert (run.answered_count, run.failed_count) == (4, 1)


def test_a_run_that_fits_one_shard_is_done_by_its_own_job(project, lead, roster_and_frames, settings):
    settings.RUN_SHARD_FRAMES = 5
    run = _detection_run(project, lead, roster_and_frames)
    job = job_run_tree(run.job_id, poll_seconds=0.05)
    assert job.status == JobStatus.SUCCEEDED and job.result["frames"] == 5
    assert not Job.objects.filter(parent=job).exists()


def test_a_failed_shard_fails_the_run_and_says_which_frames(project, lead, roster_and_frames, settings):
    settings.RUN_SHARD_FRAMES = 2
    settings.JOB_MAX_ATTEMPTS = 1
    run = _detection_run(project, lead, roster_and_frames)
    from apps.jobs.runner import job_execute

    job_execute(run.job_id)  # the run's job splits the run and waits
    shards = list(Job.objects.filter(parent_id=run.job_id).order_by("id"))
    assert Job.objects.get(id=run.job_id).status == JobStatus.WAITING and len(shards) == 3
    from apps.jobs.services import job_claim, job_mark_failed

    job_claim(job_id=shards[1].id)
    job_mark_failed(job_id=shards[1].id, error="CUDA out of memory")
    for shard in (shards[0], shards[2]):
        job_execute(shard.id)
    job = job_run_tree(run.job_id, poll_seconds=0.05)  # woken by the last shard's end
    assert job.status == JobStatus.FAILED
    assert f"Shard job #{shards[1].id} (frames 3–4) failed: CUDA out of memory" in job.error


def test_cancelling_a_split_run_cancels_its_shards(project, lead, roster_and_frames, settings):
    settings.RUN_SHARD_FRAMES = 2
    run = _detection_run(project, lead, roster_and_frames)
    from apps.jobs.runner import job_execute

    job_execute(run.job_id)
    parent = Job.objects.get(id=run.job_id)
    assert parent.status == JobStatus.WAITING
    job_cancel(job=parent)
    statuses = set(Job.objects.filter(parent=parent).values_list("status", flat=True))
    assert Job.objects.get(id=parent.id).status == JobStatus.CANCELLED and statuses == {JobStatus.CANCELLED}
    assert not Detection.objects.filter(run=run).exists()
