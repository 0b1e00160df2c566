from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.jobs.models import Job, JobStatus
from tests.factories import JobFactory


def test_sweep_jobs_command_reports_what_it_did(project):
    job = JobFactory(
        project=project, status=JobStatus.RUNNING, attempts=3, max_attempts=3,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )  # fmt: skip
    out = StringIO()
    call_command("sweep_jobs", "--stale-after", "60", stdout=out)
    assert f"failed: 1 [{job.id}]" in out.getvalue()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED


def test_launch_job_command_validates_input(project):
    with pytest.raises(CommandError, match="not JSON"):
        call_command("launch_job", "smoke", "--project", str(project.id), "--params", "{steps: 3}")
    with pytest.raises(CommandError, match="No project with id 999"):
        call_command("launch_job", "smoke", "--project", "999")
    with pytest.raises(CommandError, match="Unknown job kind"):
        call_command("launch_job", "nope", "--project", str(project.id))
    assert not Job.objects.exists()
