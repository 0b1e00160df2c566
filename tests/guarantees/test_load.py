"""QUALITY.md, load (items 25–27): the web process stays responsive while uploads stream in and a
GPU-queue job runs; a burst of 1,000 webhooks with duplicates stores every annotation once; the
API, fuzzed from its own schema as every role, never answers 5xx and always matches its schema.
Throughput and latency figures are in bench/RESULTS.md (bench/load_bench.py), not asserted here."""

import http.client
import json
import random
import threading
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from apps.core.permissions import Role
from apps.jobs.models import Job, JobStatus
from apps.labeling import services as labeling_services
from apps.labeling.browser import LabelStudioBrowser
from apps.labeling.label_config import choices_result
from apps.labeling.models import GoldLabel, LabelingProject, LabelingTask, PendingAnnotation
from tests.apps.labeling.test_faults import _start
from tests.apps.labeling.world import in_label_studio, labeling_world, labelling_member
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.guarantees.test_access_control import _world
from tests.integration.test_worker_kill import _wait_for
from tests.media_files import make_video

pytestmark = pytest.mark.django_db(transaction=True)

# ---------------------------------------------------------------- 25. uploads while a GPU job runs


def _multipart(field: str, name: str, data: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = "----vive-load-" + "7" * 16
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.integration
def test_25_pages_answer_while_uploads_stream_in_and_a_gpu_job_runs(
    live_server, clean_queue, workers, project, lead, settings, tmp_path
):
    """Two uploads held open half-sent and a job busy on a GPU-queue worker: every page
    still answers, and an upload, once whole, only stages its files and queues the ingest (the
    decoding is a worker's). Latencies under this load are measured in bench/load_bench.py."""
    from apps.jobs.services import job_create

    # A GPU-queue job that runs for a minute at most: still running whatever the pages take.
    busy = job_create(kind="smoke_gpu", project=project, created_by=lead, params={"steps": 600, "step_seconds": 0.1})
    _, log = workers("busy-gpu", queue="gpu")
    _wait_for(busy.id, lambda j: j.status == JobStatus.RUNNING, 120, log)

    browser = requests.Session()
    client = Client()
    client.force_login(lead)
    browser.cookies.set(settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value)
    form = browser.get(f"{live_server.url}/projects/{project.id}/ingest/")
    assert form.status_code == 200
    token = browser.cookies[settings.CSRF_COOKIE_NAME]
    cookies = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())

    video = make_video(tmp_path / "clip.mp4", seconds=4, fps=2, size=(320, 180)).read_bytes()
    host = urlsplit(live_server.url)
    uploads = []
    for index in range(2):
        body, content_type = _multipart("files", f"clip{index}.mp4", video, {"csrfmiddlewaretoken": token})
        connection = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        connection.putrequest("POST", f"/projects/{project.id}/ingest/")
        for header, value in (("Content-Type", content_type), ("Content-Length", str(len(body))), ("Cookie", cookies)):
            connection.putheader(header, value)
        connection.endheaders()
        connection.send(body[: len(body) // 2])  # half of it, and the rest later
        uploads.append((connection, body))

    for path in (
        f"/projects/{project.id}/",
        "/jobs/",
        f"/projects/{project.id}/runs/",
        f"/projects/{project.id}/pipeline/",
    ):
        assert browser.get(live_server.url + path, timeout=30).status_code == 200, path
    assert Job.objects.get(id=busy.id).status == JobStatus.RUNNING  # all of it while the GPU job ran
    assert not Job.objects.filter(kind="ingest").exists()  # and the uploads were still coming in

    for connection, body in uploads:
        connection.send(body[len(body) // 2 :])
        response = connection.getresponse()
        assert response.status == 302 and response.getheader("Location").startswith("/jobs/")
        connection.close()
    ingests = Job.objects.filter(kind="ingest")
    assert ingests.count() == 2 and {job.status for job in ingests} == {JobStatus.QUEUED}  # for a worker


# ---------------------------------------------------------------- 26. a burst of webhooks


def test_26_a_thousand_webhooks_with_duplicates_out_of_order_store_every_annotation_once_at_its_latest(
    ls_settings, role_groups
):
    world = labeling_world(frames=40, name="Burst world")
    labeling_project = _start(world, control_fraction=0.0)
    labeling_services.labeling_push(labeling_project=labeling_project)
    annotator = labelling_member(world.project, "burst")
    in_label_studio(annotator, "burst-pass-123")
    tasks = list(LabelingTask.objects.filter(labeling_project=labeling_project).order_by("id"))
    rng = random.Random(3)
    bodies, latest = [], {}
    with LabelStudioBrowser(ls_settings.LABEL_STUDIO_URL) as browser:
        browser.log_in(annotator.email, "burst-pass-123")
        for task in tasks:
            first = browser.annotate(task.ls_task_id, choices_result(["Ellie"]))
            latest[first["id"]] = ["Ellie"]
            bodies.append({"action": "ANNOTATION_CREATED", "annotation": first})
            if rng.random() < 0.5:
                updated = browser.change(first["id"], choices_result(["Ellie", "Victor"]))
                latest[first["id"]] = ["Ellie", "Victor"]
                bodies.append({"action": "ANNOTATION_UPDATED", "annotation": updated})
    PendingAnnotation.objects.all().delete()  # forget what Label Studio's own webhooks delivered
    LabelingProject.objects.filter(id=labeling_project.id).update(sync_queued=False)

    # 1,000 deliveries: every body many times, shuffled (older content after newer), from 4 senders.
    deliveries = [rng.choice(bodies) for _ in range(1000 - len(bodies))] + bodies
    rng.shuffle(deliveries)
    statuses: list[int] = []

    def send(chunk):
        client = Client()
        for body in chunk:
            response = client.post(
                f"/labeling/webhook/{labeling_project.id}/",
                data=json.dumps({**body, "project": {"id": labeling_project.ls_project_id}}),
                content_type="application/json",
                HTTP_X_VIVECAPTION_WEBHOOK_SECRET=labeling_project.webhook_secret,
            )
            statuses.append(response.status_code)

    senders = [threading.Thread(target=send, args=(deliveries[i::4],)) for i in range(4)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert statuses.count(202) == 1000
    assert PendingAnnotation.objects.filter(labeling_project=labeling_project).count() == len(latest)

    labeling_services.labels_sync_pending(labeling_project=labeling_project)
    stored = dict(GoldLabel.objects.filter(labeling_project=labeling_project).values_list("ls_annotation_id", "names"))
    assert stored == latest


# ---------------------------------------------------------------- 27. the API fuzzed per role

API = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
ROLES = ["anonymous", Role.ANNOTATOR, Role.REVIEWER, Role.LEAD]
# A path parameter → the key of the object it names in tests/guarantees/test_access_control.py's world.
WORLD_KEYS = {
    "project_id": "project", "character_id": "character", "asset_id": "asset", "job_id": "job",
    "review_id": "review", "export_id": "export",
}  # fmt: skip
FOREIGN_MARK = "Foreign project"


@pytest.fixture
def fuzz_world(db, django_capture_on_commit_callbacks):
    own, foreign = ProjectFactory(name="Own project"), ProjectFactory(name=FOREIGN_MARK)
    with django_capture_on_commit_callbacks(execute=False):
        return {"own": _world(own), "foreign": _world(foreign), "own_project": own}


def _headers(role, project) -> dict[str, str]:
    if role == "anonymous":
        return {}
    user = UserFactory(role=role)
    MembershipFactory(project=project, user=user)
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


@pytest.mark.parametrize("role", ROLES, ids=str)
@API.parametrize()
@hypothesis_settings(
    max_examples=12, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)  # fmt: skip
def test_27_api_fuzzed_as_every_role_never_answers_5xx_and_matches_its_schema(
    case, role, fuzz_world, django_capture_on_commit_callbacks
):
    """Every operation, with the real ids of one's own project and then of a project one is not
    in, and bodies and queries the schema allows or not: no 5xx, answers of the documented shape,
    and a foreign project's objects neither readable nor writable."""
    headers = _headers(role, fuzz_world["own_project"])
    for scope in ("own", "foreign"):
        for name in case.path_parameters or {}:
            case.path_parameters[name] = fuzz_world[scope][WORLD_KEYS[name]]
        with django_capture_on_commit_callbacks(execute=False):  # launches queue nothing
            response = case.call_and_validate(
                headers=headers, checks=[not_a_server_error, content_type_conformance, response_schema_conformance]
            )
        # (Schemathesis also tries methods the operation does not have: OPTIONS answers DRF's
        # description of the view, which holds nothing of any project.)
        if scope == "foreign" and case.method.upper() == case.operation.method.upper():
            assert not 200 <= response.status_code < 300, (case.method, case.formatted_path, response.text[:300])
        if scope == "foreign" or not case.path_parameters:  # lists show one's own projects only
            assert FOREIGN_MARK not in response.text
        if not case.path_parameters:
            break  # nothing names a project: the second call would be the first again
