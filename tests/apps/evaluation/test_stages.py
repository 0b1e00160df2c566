"""The evaluation as a parent job: its model stages are child jobs on their own queues; it gives its
worker back while they run, shows their progress, wakes when they end, and a cancel reaches the
stage that is running."""

import pytest
from django.test import Client

from apps.evaluation.services import comparison_start, eval_set_create
from apps.jobs import services as job_services
from apps.jobs.inline import job_run_tree
from apps.jobs.models import Job, JobStatus
from apps.jobs.runner import JobCancelled, JobContext, job_execute
from apps.modelhub.models import ModelVersion
from tests.apps.evaluation.test_evaluation import _extra_frames
from tests.apps.training.world import labelled_project
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def comparison(settings, tmp_path_factory):
    settings.MODELS_DIR = tmp_path_factory.mktemp("models")
    project, _, detector, _ = labelled_project(frames=4)
    _extra_frames(project, 2)
    eval_set = eval_set_create(project=project, size=2, seed=0, created_by=None)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    return comparison_start(
        eval_set=eval_set, captioner=captioner, detectors=[detector], created_by=None, enqueue=False
    )


def _stages(parent_id: int) -> list[Job]:
    return list(Job.objects.filter(parent_id=parent_id).order_by("id"))


def test_the_evaluation_gives_its_worker_back_while_its_stages_run(comparison, settings):
    parent_id = comparison.job_id
    assert job_execute(parent_id) == "waiting"
    parent = Job.objects.get(id=parent_id)
    detection = _stages(parent_id)
    assert parent.status == JobStatus.WAITING and parent.worker  # it ran, then let go of its worker
    assert [(s.kind, s.queue, s.status) for s in detection] == [("detect", settings.VLM_QUEUE, "queued")] * 2
    assert "Detecting" in parent.message

    # A stage's progress moves the parent's bar across the stage's share, never backwards.
    first = job_services.job_claim(job_id=detection[0].id, worker="gpu-worker")
    stage_ctx = JobContext.for_job(first, first.attempts)
    stage_ctx.progress(0.5, "1 of 2 frames")
    low, high = first.parent_progress_from, first.parent_progress_to
    parent.refresh_from_db()
    assert 0 <= low < high and parent.progress == pytest.approx((low + high) / 2)
    assert "job #" in parent.message and "1 of 2 frames" in parent.message
    stage_ctx.progress(0.1)
    parent.refresh_from_db()
    assert parent.progress == pytest.approx((low + high) / 2)

    # The evaluation's page polls one partial that shows every stage with its own bar.
    lead = UserFactory(role="lead")
    comparison.project.memberships.create(user=lead)
    client = Client()
    client.force_login(lead)
    partial = client.get(f"/jobs/{parent_id}/progress/", {"stages": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert partial.count("Detect characters #") == 2 and "Waiting for its stages" in partial
    page = client.get(f"/projects/{comparison.project_id}/evaluation/{comparison.id}/").content.decode()
    assert f"/jobs/{detection[0].id}/" in page and f"/jobs/{detection[1].id}/" in page

    # Running it again while a stage runs changes nothing: no second set of stages.
    Job.objects.filter(id=parent_id).update(status=JobStatus.QUEUED)
    assert job_execute(parent_id) == "waiting"
    assert [s.id for s in _stages(parent_id)] == [s.id for s in detection]


def test_a_cancel_of_the_evaluation_reaches_the_running_stage(comparison):
    parent_id = comparison.job_id
    job_execute(parent_id)
    running, queued = _stages(parent_id)
    running = job_services.job_claim(job_id=running.id, worker="gpu-worker")

    job_services.job_cancel(job=Job.objects.get(id=parent_id))
    assert Job.objects.get(id=parent_id).status == JobStatus.CANCELLED
    assert Job.objects.get(id=queued.id).status == JobStatus.CANCELLED  # never starts
    assert Job.objects.get(id=running.id).cancel_requested
    with pytest.raises(JobCancelled):  # the running stage stops at its next step
        JobContext.for_job(running, running.attempts).progress(0.3)
    job_services.job_mark_cancelled(job_id=running.id, attempt=running.attempts)
    assert Job.objects.get(id=parent_id).status == JobStatus.CANCELLED  # its end does not wake the parent


def test_a_stage_that_fails_fails_the_evaluation_with_its_reason(comparison):
    parent_id = comparison.job_id
    job_execute(parent_id)
    first, second = _stages(parent_id)
    claimed = job_services.job_claim(job_id=first.id)
    job_services.job_mark_failed(job_id=first.id, error="CUDA out of memory", attempt=claimed.attempts)
    assert Job.objects.get(id=parent_id).status == JobStatus.WAITING  # the other stage still runs
    claimed = job_services.job_claim(job_id=second.id)
    job_services.job_mark_succeeded(job_id=second.id, result={}, attempt=claimed.attempts)
    parent = Job.objects.get(id=parent_id)
    assert parent.status == JobStatus.QUEUED  # woken by its last stage's end
    assert job_execute(parent_id) == "failed"
    parent.refresh_from_db()
    assert f"job #{first.id}) ended failed: CUDA out of memory" in parent.error


def test_a_lost_wake_up_is_repaired_by_the_sweeper(comparison):
    parent_id = comparison.job_id
    job_execute(parent_id)
    for stage in _stages(parent_id):  # the stages ended, but (say) their worker died before waking the parent
        Job.objects.filter(id=stage.id).update(status=JobStatus.SUCCEEDED)
    assert Job.objects.get(id=parent_id).status == JobStatus.WAITING
    assert job_services.jobs_sweep()["woken"] == [parent_id]
    assert Job.objects.get(id=parent_id).status == JobStatus.QUEUED


def test_the_whole_evaluation_runs_to_the_end_in_one_process_when_no_worker_listens(comparison):
    parent = job_run_tree(comparison.job_id)
    assert parent.status == JobStatus.SUCCEEDED, parent.error
    kinds = sorted(stage.kind for stage in _stages(parent.id))
    # 2 pipelines × (eval set, gold test split) captions; the detector on both too.
    assert kinds == ["caption"] * 4 + ["detect", "detect", "evaluation_clipscore"]
    assert {stage.status for stage in _stages(parent.id)} == {JobStatus.SUCCEEDED}
    comparison.refresh_from_db()
    assert comparison.report["meta"]["pipelines"] == ["no detection", f"{comparison.pipelines.last().label}"]


def test_a_cancel_that_arrives_while_the_evaluation_starts_its_stages_ends_it(comparison, monkeypatch):
    from apps.evaluation import handlers

    real = handlers._detection_stages

    def stages_then_cancel(job, *args):
        started = real(job, *args)
        job_services.job_cancel(job=Job.objects.get(id=job.id))  # the lead clicks while stages are created
        return started

    monkeypatch.setattr(handlers, "_detection_stages", stages_then_cancel)
    assert job_execute(comparison.job_id) == "waiting"
    assert Job.objects.get(id=comparison.job_id).status == JobStatus.CANCELLED
    assert {stage.status for stage in _stages(comparison.job_id)} == {JobStatus.CANCELLED}
