"""Shards: a parent's work split into child jobs that run at once; their progress sums on the
parent's bar, and the job page summarises a thousand of them instead of listing them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.jobs import services
from apps.jobs.kinds import shard_params
from apps.jobs.models import STAGE_ROWS, Job, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    from apps.jobs.tasks import run_job

    messages = []
    monkeypatch.setattr(run_job, "apply_async", lambda args, **options: messages.append(args))
    return messages


def _waiting_parent(project, lead, **fields) -> Job:
    return Job.objects.create(kind="detect", project=project, created_by=lead, status=JobStatus.WAITING, **fields)


def _shards(parent: Job, sizes: list[int]) -> list[Job]:
    starts = [sum(sizes[:index]) for index in range(len(sizes))]
    params = [{"detection_run_id": 1, "start": s, "stop": s + n} for s, n in zip(starts, sizes, strict=True)]
    return services.job_shards_start(parent=parent, kind="detect_shard", params=params, sizes=sizes)


def test_shards_are_queued_at_once_with_spans_by_size(project, lead, sent, django_capture_on_commit_callbacks):
    parent = _waiting_parent(project, lead)
    with django_capture_on_commit_callbacks(execute=True):
        shards = _shards(parent, [300, 100])
    assert [(s.parent_progress_from, s.parent_progress_to) for s in shards] == [(0.0, 0.75), (0.75, 1.0)]
    assert all(s.status == JobStatus.QUEUED and s.queue == "gpu" and s.parent == parent for s in shards)
    assert sorted(sent) == sorted([[s.id] for s in shards])  # every shard sent, for any worker to take
    assert "split into 2 shards" in Job.objects.get(id=parent.id).log
    with pytest.raises(ValueError, match="not a shard kind"):
        services.job_shards_start(parent=parent, kind="smoke", params=[{}], sizes=[1])


def test_the_parents_bar_is_the_sum_of_its_shards_and_moves_its_own_parent(project, lead, sent):
    evaluation = _waiting_parent(project, lead)
    run_job = _waiting_parent(project, lead, parent=evaluation, parent_progress_from=0.2, parent_progress_to=0.6)
    first, second = _shards(run_job, [300, 100])
    Job.objects.filter(id=first.id).update(progress=0.5)
    Job.objects.filter(id=second.id).update(progress=1.0, status=JobStatus.SUCCEEDED)
    services.job_report_shards_progress(parent_id=run_job.id)
    run_job.refresh_from_db()
    assert run_job.progress == pytest.approx(0.75 * 0.5 + 0.25) and run_job.message == "1 of 2 shards done"
    assert Job.objects.get(id=evaluation.id).progress == pytest.approx(0.2 + 0.4 * 0.625)
    # a shard retried from the start reports less: the bar never goes back
    Job.objects.filter(id=first.id).update(progress=0.0)
    services.job_report_shards_progress(parent_id=run_job.id)
    assert Job.objects.get(id=run_job.id).progress == pytest.approx(0.625)


def test_a_shard_reporting_progress_moves_its_parent(project, lead, sent):
    from apps.jobs.runner import JobContext

    parent = _waiting_parent(project, lead)
    first, _ = _shards(parent, [1, 1])
    claimed = services.job_claim(job_id=first.id)
    JobContext.for_job(claimed, claimed.attempts).progress(0.5, "half")
    assert Job.objects.get(id=parent.id).progress == pytest.approx(0.25)


def test_a_job_page_summarises_many_stages_and_lists_those_not_done(project, lead, sent):
    parent = _waiting_parent(project, lead)
    shards = _shards(parent, [10] * (STAGE_ROWS + 30))
    Job.objects.filter(id__in=[s.id for s in shards[:40]]).update(status=JobStatus.SUCCEEDED)
    Job.objects.filter(id=shards[40].id).update(status=JobStatus.RUNNING)
    stages = Job.objects.get(id=parent.id).stages
    assert stages["total"] == STAGE_ROWS + 30 and len(stages["rows"]) == 10 and stages["hidden"] == 40
    assert dict(stages["counts"]) == {"Queued": 9, "Running": 1, "Succeeded": 40}
    assert all(row.status != JobStatus.SUCCEEDED for row in stages["rows"])
    few = _waiting_parent(project, lead)
    _shards(few, [1, 1])
    assert len(few.stages["rows"]) == 2 and few.stages["hidden"] == 0


def test_the_eta_goes_by_the_pace_since_the_first_start(project, lead):
    job = Job.objects.create(
        kind="smoke", project=project, status=JobStatus.RUNNING, progress=0.25,
        started_at=timezone.now() - timedelta(minutes=10),
    )  # fmt: skip
    assert job.eta_seconds == pytest.approx(1800, abs=5) and job.eta_text == "about 30 min left"
    job.progress = 0.01
    assert job.eta_seconds is None and job.eta_text == ""  # too early to tell
    job.status, job.progress = JobStatus.SUCCEEDED, 1.0
    assert job.eta_text == ""


def test_a_retried_job_keeps_its_first_start(project, lead, sent):
    job = services.job_create(kind="smoke", project=project, created_by=lead)
    first = services.job_claim(job_id=job.id).started_at
    Job.objects.filter(id=job.id).update(status=JobStatus.QUEUED)  # the sweeper's re-queue
    assert services.job_claim(job_id=job.id).started_at == first


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"detection_run_id": 1, "start": 0}, "stop must be a non-negative integer"),
        ({"detection_run_id": 1, "start": -1, "stop": 3}, "start must be a non-negative integer"),
        ({"detection_run_id": 1, "start": 4, "stop": 4}, "stop must be after start"),
        ({"detection_run_id": True, "start": 0, "stop": 4}, "detection_run_id must be a positive integer"),
    ],
)
def test_shard_parameters_are_a_row_and_a_range_of_positions(params, error):
    with pytest.raises(ValueError, match=error):
        shard_params("detection_run_id")(params)
    assert shard_params("detection_run_id")({"detection_run_id": 2, "start": 0, "stop": 4, "x": 1}) == {
        "detection_run_id": 2,
        "start": 0,
        "stop": 4,
    }


def test_the_job_page_of_a_split_run_counts_its_shards_instead_of_listing_them(project, lead, sent, client):
    parent = _waiting_parent(project, lead, progress=0.5, started_at=timezone.now() - timedelta(minutes=2))
    shards = _shards(parent, [10] * 200)
    Job.objects.filter(id__in=[s.id for s in shards[:150]]).update(status=JobStatus.SUCCEEDED, progress=1.0)
    client.force_login(lead)
    page = client.get(f"/jobs/{parent.id}/").content.decode()
    assert "150 succeeded" in page and "50 queued" in page and "about 2 min left" in page
    assert page.count('class="badge status-queued"') == STAGE_ROWS  # only the first shards not done
    assert f"#{shards[150].id}" in page and f"#{shards[0].id}<" not in page
    dashboard = client.get("/jobs/").content.decode()
    assert f"/jobs/{parent.id}/" in dashboard and f"/jobs/{shards[0].id}/" not in dashboard  # the run, not its shards
