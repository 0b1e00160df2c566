from django.conf import settings
from django.test import Client

from apps.jobs.models import Job, JobStatus
from tests.factories import JobFactory


def test_progress_partial_polls_while_running_and_stops_when_done(client, annotator, project):
    client.force_login(annotator)
    job = JobFactory(project=project, status=JobStatus.RUNNING, progress=0.42, message="Step 4 of 10")
    response = client.get(f"/jobs/{job.id}/progress/", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'aria-valuenow="42"' in body and 'hx-trigger="every 1s"' in body and "Step 4 of 10" in body

    Job.objects.filter(id=job.id).update(status=JobStatus.SUCCEEDED, progress=1.0)
    response = client.get(f"/jobs/{job.id}/progress/", HTTP_HX_REQUEST="true")
    assert response.status_code == 286  # htmx stops polling
    assert 'aria-valuenow="100"' in response.content.decode()
    assert "hx-trigger" not in response.content.decode()


def test_job_page_reloads_once_when_the_job_ends(client, annotator, project):
    client.force_login(annotator)
    job = JobFactory(project=project, status=JobStatus.FAILED, error="Boom")
    response = client.get(f"/jobs/{job.id}/progress/?reload=1", HTTP_HX_REQUEST="true")
    assert response["HX-Refresh"] == "true"
    page = client.get(f"/jobs/{job.id}/").content.decode()
    assert "Boom" in page and "hx-trigger" not in page


def test_dashboard_filters_by_status_with_htmx(client, reviewer, project):
    client.force_login(reviewer)
    done = JobFactory(project=project, status=JobStatus.SUCCEEDED)
    failed = JobFactory(project=project, status=JobStatus.FAILED)
    response = client.get("/jobs/?status=failed&ordering=oldest", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="job-table">')
    assert f'href="/jobs/{failed.id}/"' in body and f'href="/jobs/{done.id}/"' not in body


def test_htmx_posts_need_the_csrf_token(lead, project):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lead)
    job = JobFactory(project=project)
    assert client.post(f"/jobs/{job.id}/cancel/", HTTP_HX_REQUEST="true").status_code == 403
    client.get(f"/jobs/{job.id}/")  # sets the csrf cookie, as the browser would
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(f"/jobs/{job.id}/cancel/", HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_lead_launches_a_smoke_job_from_the_project_page(client, lead, project, django_capture_on_commit_callbacks):
    client.force_login(lead)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/jobs/launch/{project.id}/", {"kind": "smoke", "steps": "4", "step_seconds": "0.1"})
    job = Job.objects.get()
    assert response["Location"] == f"/jobs/{job.id}/"
    assert job.params == {"steps": 4, "step_seconds": 0.1, "fail_at_step": None} and job.created_by == lead


def test_api_rejects_unknown_ordering(api_client, lead, project):
    api_client.force_authenticate(lead)
    response = api_client.get(f"/api/projects/{project.id}/jobs/?ordering=password")
    assert response.status_code == 400 and "ordering" in response.json()


def test_the_project_page_loads_its_footage_and_jobs_panels(client, lead, annotator, project, other_project):
    JobFactory(project=project, kind="smoke")
    JobFactory(project=other_project, kind="smoke")
    client.force_login(lead)
    page = client.get(f"/projects/{project.id}/").content.decode()
    assert f'hx-get="/projects/{project.id}/footage/"' in page and f'hx-get="/jobs/project/{project.id}/"' in page

    footage = client.get(f"/projects/{project.id}/footage/").content.decode()
    assert "Browse 0 assets" in footage and f'href="/projects/{project.id}/exports/"' in footage
    jobs = client.get(f"/jobs/project/{project.id}/").content.decode()
    own, foreign = Job.objects.get(project=project), Job.objects.get(project=other_project)
    assert f'href="/jobs/{own.id}/"' in jobs and f'href="/jobs/{foreign.id}/"' not in jobs
    assert f'action="/jobs/launch/{project.id}/"' in jobs

    client.force_login(annotator)
    jobs = client.get(f"/jobs/project/{project.id}/").content.decode()
    assert f'href="/jobs/{own.id}/"' in jobs and "/jobs/launch/" not in jobs
    assert client.get(f"/jobs/project/{other_project.id}/").status_code == 404
