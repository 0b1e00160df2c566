from django.conf import settings
from django.test import Client
from django.urls import reverse

from apps.jobs.kinds import JOB_KINDS
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


def test_dashboard_filters_by_project_and_kind_in_the_url_and_says_when_none_match(
    client, lead, project, other_project
):
    other_project.memberships.create(user=lead)
    smoke = JobFactory(project=project, kind="smoke", created_by=lead)
    elsewhere = JobFactory(project=other_project, kind="smoke", created_by=lead)
    ingest = JobFactory(project=project, kind="ingest", created_by=lead)
    client.force_login(lead)

    page = client.get(f"/jobs/?project={project.id}&kind=smoke").content.decode()
    assert f'href="/jobs/{smoke.id}/"' in page
    assert f'href="/jobs/{elsewhere.id}/"' not in page and f'href="/jobs/{ingest.id}/"' not in page
    assert 'hx-push-url="true"' in page and f'<option value="{project.id}" selected>' in page
    assert "<td>Smoke test</td>" in page and "<td>smoke</td>" not in page  # kinds by their label

    none = client.get(f"/jobs/?project={other_project.id}&kind=ingest").content.decode()
    assert "No jobs match these filters." in none and "No jobs yet" not in none
    # A value that is not a choice (a foreign project, an unknown kind) is dropped, not an error.
    unfiltered = client.get("/jobs/?project=999999&kind=nope&status=bogus").content.decode()
    assert all(f'href="/jobs/{job.id}/"' in unfiltered for job in (smoke, elsewhere, ingest))


def test_periodic_syncs_do_not_crowd_the_dashboard_or_the_project_panel(client, lead, project):
    launched = JobFactory(project=project, kind="labeling_sync", created_by=lead)  # a lead asked for it
    periodic = [JobFactory(project=project, kind="labeling_sync", created_by=None) for _ in range(12)]
    real = JobFactory(project=project, kind="smoke", created_by=lead)
    client.force_login(lead)
    for url in ("/jobs/", f"/jobs/project/{project.id}/"):
        body = client.get(url).content.decode()
        assert f'href="/jobs/{real.id}/"' in body and f'href="/jobs/{launched.id}/"' in body, url
        assert not any(f'href="/jobs/{job.id}/"' in body for job in periodic), url
    with_syncs = client.get("/jobs/?housekeeping=on").content.decode()
    assert all(f'href="/jobs/{job.id}/"' in with_syncs for job in periodic)


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
    assert "Browse 0 assets" in footage and f'href="/projects/{project.id}/ingest/"' in footage
    jobs = client.get(f"/jobs/project/{project.id}/").content.decode()
    own, foreign = Job.objects.get(project=project), Job.objects.get(project=other_project)
    assert f'href="/jobs/{own.id}/"' in jobs and f'href="/jobs/{foreign.id}/"' not in jobs
    assert f'action="/jobs/launch/{project.id}/"' in jobs

    client.force_login(annotator)
    jobs = client.get(f"/jobs/project/{project.id}/").content.decode()
    assert f'href="/jobs/{own.id}/"' in jobs and "/jobs/launch/" not in jobs
    assert client.get(f"/jobs/project/{other_project.id}/").status_code == 404


def test_every_job_page_links_to_what_its_job_made_or_works_on(client, lead, project):
    """Each kind that names a page resolves it (a wrong URL name or argument fails here)."""
    producing = {name: kind for name, kind in JOB_KINDS.items() if kind.produces}
    assert {"detect", "caption", "embed", "cluster", "sample_gold", "train_detector", "evaluate"} <= set(producing)
    assert {"dataset_export", "labeling_push", "labeling_sync", "ingest", "review_pairwise_judge"} <= set(producing)
    for name, kind in producing.items():
        label, url_name, key = kind.produces
        job = JobFactory(project=project, kind=name, params={key: 7} if key else {})
        args = [project.id, 7] if key else [project.id]
        assert job.produced_link == (label, reverse(url_name, args=args)), name
    # A row known only once the job has ended (its result names it): no link before.
    clustering = JobFactory(project=project, kind="cluster", params={"embedding_run_id": 3})
    assert clustering.produced_link is None
    clustering.result = {"clustering_run_id": 9}
    assert clustering.produced_link == ("the clustering", f"/projects/{project.id}/curation/clusterings/9/")

    client.force_login(lead)
    detection = JobFactory(project=project, kind="detect", params={"detection_run_id": 5}, status=JobStatus.SUCCEEDED)
    page = client.get(f"/jobs/{detection.id}/").content.decode()
    assert f'Open <a href="/projects/{project.id}/runs/detections/5/">the detection run</a>' in page
