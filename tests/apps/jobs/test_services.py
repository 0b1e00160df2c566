from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.core.errors import ApplicationError, InvalidStateError
from apps.jobs import services
from apps.jobs.kinds import JOB_KINDS, JobKind
from apps.jobs.models import Job, JobStatus
from apps.jobs.runner import job_execute
from apps.jobs.tasks import run_job
from tests.factories import JobFactory


@pytest.fixture
def sent(monkeypatch):
    """Record what would reach the broker (the worker tests use the real one)."""
    messages = []
    monkeypatch.setattr(run_job, "apply_async", lambda args, **options: messages.append((args, options)))
    return messages


def test_create_enqueues_only_after_commit(project, lead, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = services.job_create(kind="smoke", project=project, created_by=lead, params={"steps": 3})
        assert sent == []  # nothing sent while the transaction is open
    assert len(callbacks) == 1
    assert [(args, options["queue"]) for args, options in sent] == [([job.id], "cpu")]
    job.refresh_from_db()
    assert job.created_at <= job.enqueued_at <= timezone.now()
    assert job.params == {"steps": 3, "step_seconds": 0.5, "fail_at_step": None}


def test_rolled_back_create_sends_nothing(project, lead, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                services.job_create(kind="smoke", project=project, created_by=lead)
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    assert callbacks == [] and sent == [] and not Job.objects.exists()


def test_gpu_kinds_go_to_the_gpu_queue(project, lead, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_create(kind="smoke_gpu", project=project, created_by=lead)
    assert job.queue == "gpu" and sent[0][1]["queue"] == "gpu"


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("nope", {}, "Unknown job kind 'nope'"),
        ("smoke", {"steps": 0}, "steps must be between"),
        ("smoke", {"colour": "red"}, "unknown parameter(s): colour"),
    ],
)
def test_bad_launches_are_refused_clearly(project, lead, kind, params, message):
    with pytest.raises(ApplicationError) as excinfo:
        services.job_create(kind=kind, project=project, created_by=lead, params=params)
    assert message in excinfo.value.message
    assert not Job.objects.exists()


def test_broker_down_at_enqueue_leaves_the_job_queued_then_the_sweeper_sends_it(
    project, lead, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setattr(run_job, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_create(kind="smoke", project=project, created_by=lead)
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert "Broker unreachable" in job.message

    resent = []
    monkeypatch.setattr(run_job, "apply_async", lambda args, **options: resent.append(args))
    outcome = services.jobs_sweep(reenqueue_after=60, now=timezone.now() + timedelta(seconds=61))
    assert outcome["reenqueued"] == [job.id] and resent == [[job.id]]


def test_claim_happens_once(project):
    job = JobFactory(project=project)
    assert services.job_claim(job_id=job.id).status == JobStatus.RUNNING
    assert services.job_claim(job_id=job.id) is None
    job.refresh_from_db()
    assert job.attempts == 1


def test_cancel_queued_job_ends_it_at_once(project):
    job = services.job_cancel(job=JobFactory(project=project))
    assert job.status == JobStatus.CANCELLED and services.job_claim(job_id=job.id) is None


def test_cancel_finished_job_is_refused(project):
    job = JobFactory(project=project, status=JobStatus.SUCCEEDED)
    with pytest.raises(InvalidStateError, match="already succeeded"):
        services.job_cancel(job=job)


def _running(project, *, attempts, max_attempts=3, seconds_ago=600):
    return JobFactory(
        project=project,
        status=JobStatus.RUNNING,
        attempts=attempts,
        max_attempts=max_attempts,
        heartbeat_at=timezone.now() - timedelta(seconds=seconds_ago),
    )


def test_sweeper_requeues_a_stale_job_while_attempts_remain(project, sent):
    stale, fresh = _running(project, attempts=1), _running(project, attempts=1, seconds_ago=1)
    outcome = services.jobs_sweep(stale_after=300)
    assert outcome["requeued"] == [stale.id]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == JobStatus.QUEUED and "attempt 2 of 3" in stale.message
    assert "worker lost" in stale.log and "re-queued" in stale.log
    assert fresh.status == JobStatus.RUNNING
    assert [(args, options["queue"]) for args, options in sent] == [([stale.id], "cpu")]


def test_sweeper_fails_a_stale_job_when_attempts_are_used_up(project, sent):
    job = _running(project, attempts=3)
    assert services.jobs_sweep(stale_after=300)["failed"] == [job.id]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "stopped responding" in job.error and "after 3 of 3 attempts" in job.error
    assert sent == []


# --- the runner, in-process (the real worker process is exercised in tests/integration) ---


@pytest.fixture
def claimable(transactional_db, project):
    def make(**params):
        return JobFactory(project=project, params={"steps": 3, "step_seconds": 0.0, "fail_at_step": None, **params})

    return make


def test_execute_runs_the_handler_and_records_the_result(claimable):
    job = claimable()
    assert job_execute(job.id) == "succeeded"
    job.refresh_from_db()
    assert (job.status, job.progress, job.attempts) == (JobStatus.SUCCEEDED, 1.0, 1)
    assert job.result["steps_done"] == 3 and job.started_at <= job.finished_at <= timezone.now()
    assert "started on" in job.log and job.log.rstrip().endswith("succeeded")


def test_duplicate_delivery_runs_once(claimable):
    job = claimable()
    assert job_execute(job.id) == "succeeded"
    assert job_execute(job.id) == "skipped"
    job.refresh_from_db()
    assert job.attempts == 1


def test_failure_is_recorded_with_reason_and_traceback(claimable):
    job = claimable(fail_at_step=2)
    assert job_execute(job.id) == "failed"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "SmokeFailure: Failed on purpose at step 2 of 3."
    assert "Traceback" in job.traceback


def test_cancel_while_running_stops_at_the_next_step(claimable, monkeypatch):
    steps_run = []

    def handler(job, ctx):
        for step in range(1, 6):
            steps_run.append(step)
            if step == 2:
                Job.objects.filter(id=job.id).update(cancel_requested=True)  # a lead clicks Cancel
            ctx.progress(step / 5)
        return {}

    monkeypatch.setitem(JOB_KINDS, "smoke", JobKind(name="smoke", label="t", queue="cpu", handler=handler))
    job = claimable()
    assert job_execute(job.id) == "cancelled"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and steps_run == [1, 2]


def test_final_status_is_written_after_the_database_connection_dropped(claimable, monkeypatch):
    def handler(job, ctx):
        connection.close()  # the connection goes away during a long step
        return {"ok": True}

    monkeypatch.setitem(JOB_KINDS, "smoke", JobKind(name="smoke", label="t", queue="cpu", handler=handler))
    job = claimable()
    assert job_execute(job.id) == "succeeded"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.result == {"ok": True}


def test_heartbeat_thread_keeps_a_long_step_alive(claimable, monkeypatch, settings):
    import time

    settings.JOB_HEARTBEAT_SECONDS = 0.1
    beats = []

    def handler(job, ctx):
        first = Job.objects.get(id=job.id).heartbeat_at
        time.sleep(0.5)  # one long step with no progress call
        beats.append((first, Job.objects.get(id=job.id).heartbeat_at))
        return {}

    monkeypatch.setitem(JOB_KINDS, "smoke", JobKind(name="smoke", label="t", queue="cpu", handler=handler))
    job_execute(claimable().id)
    first, later = beats[0]
    assert later > first


def test_only_launchable_kinds_can_be_started_by_hand(api_client, lead, project):
    api_client.force_authenticate(lead)
    forged = {"staging_id": "../projects/7/videos", "files": []}
    response = api_client.post(f"/api/projects/{project.id}/jobs/", {"kind": "ingest", "params": forged}, format="json")
    assert response.status_code == 400 and not Job.objects.exists()
    with pytest.raises(ApplicationError, match="started from their own page"):
        services.job_launch(kind="ingest", project=project, created_by=lead, params=forged)
    with pytest.raises(ApplicationError, match="staging_id"):  # even a service caller cannot point it elsewhere
        services.job_create(kind="ingest", project=project, created_by=lead, params=forged)
    huge = api_client.post(
        f"/api/projects/{project.id}/jobs/",
        data='{"kind": "smoke", "params": {"steps": 1e400}}',
        content_type="application/json",
    )
    assert huge.status_code == 400


def test_an_attempt_that_lost_the_job_writes_nothing_more(claimable):
    from apps.jobs.runner import JobContext

    job = claimable()
    first = services.job_claim(job_id=job.id)
    old = JobContext(job.id, attempt=first.attempts)
    Job.objects.filter(id=job.id).update(status=JobStatus.QUEUED)  # the sweeper thought it dead
    second = services.job_claim(job_id=job.id)
    assert second.attempts == 2
    with pytest.raises(services.JobSuperseded):
        old.progress(0.9, "stale")
    assert not services.job_mark_succeeded(job_id=job.id, result={"stale": True}, attempt=first.attempts)
    JobContext(job.id, attempt=second.attempts).progress(0.5, "current")
    job.refresh_from_db()
    assert (job.status, job.progress, job.message, job.result) == (JobStatus.RUNNING, 0.5, "current", {})


def test_cancel_never_overwrites_a_job_that_just_finished(project):
    job = JobFactory(project=project, status=JobStatus.RUNNING, attempts=1)
    stale_copy = Job.objects.get(id=job.id)
    services.job_mark_succeeded(job_id=job.id, result={"ok": 1})  # the worker finishes first
    with pytest.raises(InvalidStateError, match="already succeeded"):
        services.job_cancel(job=stale_copy)  # the lead's click was based on the page from before
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.result == {"ok": 1}


def test_sweeper_resends_lost_messages_with_backoff(project, sent):
    job = JobFactory(project=project, status=JobStatus.QUEUED)
    Job.objects.filter(id=job.id).update(enqueued_at=timezone.now(), enqueue_count=1)
    later = timezone.now() + timedelta(seconds=61)
    assert services.jobs_sweep(reenqueue_after=60, now=later)["reenqueued"] == [job.id]
    job.refresh_from_db()
    assert job.enqueue_count == 2
    # the second re-send waits twice as long
    assert services.jobs_sweep(reenqueue_after=60, now=job.enqueued_at + timedelta(seconds=61))["reenqueued"] == []
    assert services.jobs_sweep(reenqueue_after=60, now=job.enqueued_at + timedelta(seconds=121))["reenqueued"] == [
        job.id
    ]


def test_id_params_keeps_only_positive_integer_ids():
    from apps.jobs.kinds import id_params

    clean = id_params("review_id", "judge_id")
    assert clean({"review_id": 3, "judge_id": 9, "extra": "dropped"}) == {"review_id": 3, "judge_id": 9}
    for bad in (
        {"review_id": 3},
        {"review_id": 0, "judge_id": 1},
        {"review_id": True, "judge_id": 1},
        {"review_id": "3", "judge_id": 1},
    ):
        with pytest.raises(ValueError, match="must be a positive integer"):
            clean(bad)


def test_job_start_for_names_the_row_in_the_params_and_keeps_the_job_on_it(
    project, lead, django_capture_on_commit_callbacks
):
    from apps.captioning.models import CaptionRun, DetectionRun
    from apps.evaluation.models import Comparison
    from apps.jobs.services import job_start_for, row_param
    from apps.labeling.models import LabelingProject
    from apps.modelhub.models import ModelRole, ModelVersion

    assert [row_param(model()) for model in (DetectionRun, CaptionRun, Comparison, LabelingProject)] == [
        "detection_run_id",
        "caption_run_id",
        "comparison_id",
        "labeling_project_id",
    ]
    detector = ModelVersion.objects.create(project=project, role=ModelRole.DETECTOR, name="d", model="tiny/qwen")
    run = DetectionRun.objects.create(project=project, model_version=detector, prompt_version="v")
    with django_capture_on_commit_callbacks(execute=False):
        job = job_start_for(run, kind="detect", created_by=lead)
    run.refresh_from_db()
    assert run.job == job and job.params == {"detection_run_id": run.id} and job.project == project
    assert job.kind == "detect" and job.created_by == lead and job.status == JobStatus.QUEUED
