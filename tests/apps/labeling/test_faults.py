"""Label Studio down, slow or failing; bad webhooks; a burst of duplicated, reordered webhooks."""

import json
import random
import threading

import pytest
from django.test import Client

from apps.jobs.models import Job
from apps.jobs.runner import job_execute
from apps.labeling import services
from apps.labeling.browser import LabelStudioBrowser
from apps.labeling.client import LabelStudioClient, LabelStudioUnavailable
from apps.labeling.label_config import choices_result
from apps.labeling.models import GoldLabel, LabelingProject, LabelingTask, PendingAnnotation
from tests.apps.labeling.world import in_label_studio, labeling_world, labelling_member
from tests.factories import UserFactory
from tests.labelstudio import Rule, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def _start(world, **kwargs):
    return services.labeling_project_start(
        gold_set=world.gold_set, detection_run=world.detection_run, created_by=None, enqueue=False, **kwargs
    )


def _remote_task_count(labeling_project) -> int:
    return len(list(LabelStudioClient().tasks(project_id=labeling_project.ls_project_id)))


def test_label_studio_down_during_push_records_sync_pending_and_a_retry_completes(ls_settings, role_groups, client):
    world = labeling_world(frames=4, name="Down world")
    labeling_project = _start(world)
    real_url = ls_settings.LABEL_STUDIO_URL
    ls_settings.LABEL_STUDIO_URL = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    ls_settings.LABEL_STUDIO_RETRIES = 2
    job = Job.objects.get(id=job_execute_and_reload(labeling_project.push_job_id))
    assert job.status == "failed" and "did not answer" in job.error
    labeling_project.refresh_from_db()
    assert labeling_project.status == "failed" and labeling_project.sync_pending
    assert "did not answer" in labeling_project.sync_error

    lead = UserFactory(role="lead")
    labeling_project.project.memberships.create(user=lead)
    client.force_login(lead)
    page = client.get(f"/projects/{world.project.id}/labeling/{labeling_project.id}/").content.decode()
    assert "Sync pending" in page and "nothing is lost" in page

    # Label Studio is back: the beat retries the push that failed while it was away.
    ls_settings.LABEL_STUDIO_URL = real_url
    (retry_job_id,) = services.labeling_reconcile_all()
    assert Job.objects.get(id=job_execute_and_reload(retry_job_id)).status == "succeeded"
    labeling_project.refresh_from_db()
    assert labeling_project.status == "ready" and not labeling_project.sync_error
    assert labeling_project.tasks.count() == 4 == _remote_task_count(labeling_project)
    assert services.labeling_reconcile_all() != []  # ready now: the beat syncs it from here on


def job_execute_and_reload(job_id: int) -> int:
    job_execute(job_id)
    return job_id


def test_500s_and_slow_answers_are_retried_with_backoff(ls_settings, role_groups, faulty_proxy):
    world = labeling_world(frames=3, name="Flaky world")
    labeling_project = _start(world)
    faulty_proxy.faults.fail_next = 2  # the first two requests answer 500
    sleeps: list[float] = []
    flaky = LabelStudioClient(url=faulty_proxy.url, retries=3, backoff_seconds=0.5, sleep=sleeps.append)
    services.labeling_push(labeling_project=labeling_project, client=flaky)
    assert sleeps[:2] == [0.5, 1.0]  # exponential backoff
    labeling_project.refresh_from_db()
    assert labeling_project.status == "ready" and _remote_task_count(labeling_project) == 3

    faulty_proxy.faults.delay_seconds = 1.5  # slower than the client's timeout: retried, then given up
    slow = LabelStudioClient(url=faulty_proxy.url, timeout=0.5, retries=1, backoff_seconds=0.01)
    with pytest.raises(LabelStudioUnavailable, match="did not answer to"):
        services.labels_reconcile(labeling_project=labeling_project, client=slow)
    labeling_project.refresh_from_db()
    assert labeling_project.sync_pending


def test_a_push_that_failed_after_label_studio_did_the_work_creates_no_duplicates(
    ls_settings, role_groups, faulty_proxy
):
    world = labeling_world(frames=5, name="Half-done world")
    ls_settings.LABELING_TASK_BATCH_SIZE = 2
    labeling_project = _start(world)
    # The second import is stored by Label Studio, but its answer is lost (500 after the work).
    faulty_proxy.faults.rules = [
        Rule("POST", r"^/api/projects/\d+/import", "forward", times=1),
        Rule("POST", r"^/api/projects/\d+/import", "forward-then-fail", times=1),
    ]
    with pytest.raises(LabelStudioUnavailable, match="did not answer to"):
        services.labeling_push(
            labeling_project=labeling_project,
            client=LabelStudioClient(url=faulty_proxy.url, retries=0, backoff_seconds=0.01),
        )
    labeling_project.refresh_from_db()
    assert labeling_project.tasks.count() == 2  # only the first batch's ids came back
    outcome = services.labeling_push(labeling_project=labeling_project)
    assert outcome["tasks_adopted"] == 2 and outcome["tasks_imported"] == 1
    assert labeling_project.tasks.count() == 5 == _remote_task_count(labeling_project)


LOST_ANSWERS = [
    Rule("POST", r"^/api/projects/?$", "?"),  # the project's create
    Rule("POST", r"^/api/webhooks/?$", "?"),  # the webhook's create
    Rule("POST", r"^/api/projects/\d+/import", "?"),  # the first task import
]


@pytest.mark.parametrize("lost", ["forward-then-drop", "forward-then-stall"])
def test_creates_whose_answer_was_lost_are_adopted_not_sent_again(ls_settings, role_groups, faulty_proxy, lost):
    """Label Studio does each create, then its answer is lost (the connection closes, or the client
    times out): the client's retry finds what was made instead of making it twice."""
    name = f"Lost answers world {lost}"
    world = labeling_world(frames=5, name=name)
    ls_settings.LABELING_TASK_BATCH_SIZE = 2
    labeling_project = _start(world)
    faulty_proxy.faults.rules = [Rule(rule.method, rule.path, lost) for rule in LOST_ANSWERS]
    faulty_proxy.faults.stall_seconds = 3.0
    client = LabelStudioClient(
        url=faulty_proxy.url, retries=2, backoff_seconds=0.05, timeout=2.0 if lost.endswith("stall") else 30.0
    )
    services.labeling_push(labeling_project=labeling_project, client=client)
    assert [rule.hits for rule in faulty_proxy.faults.rules] == [1, 1, 1]  # each create's answer was lost once

    labeling_project.refresh_from_db()
    sdk = LabelStudioClient().sdk
    title = f"{name} · gold v{world.gold_set.version}"[:50]
    projects = [p.id for p in sdk.projects.list(title=title, page_size=100, include="id,title") if p.title == title]
    assert projects == [labeling_project.ls_project_id]
    webhooks = [hook.id for hook in sdk.webhooks.list(project=str(labeling_project.ls_project_id))]
    assert webhooks == [labeling_project.ls_webhook_id]
    remote = list(LabelStudioClient().tasks(project_id=labeling_project.ls_project_id, fields="task_only"))
    assert sorted(task["data"]["asset_id"] for task in remote) == sorted(asset.id for asset in world.assets)
    assert {task["data"]["asset_id"]: task["id"] for task in remote} == dict(
        labeling_project.tasks.values_list("asset_id", "ls_task_id")
    )
    assert labeling_project.status == "ready"


def test_sync_while_label_studio_is_down_keeps_pending_rows(ls_settings, role_groups):
    world = labeling_world(frames=2, name="Sync-down world")
    labeling_project = _start(world)
    services.labeling_push(labeling_project=labeling_project)
    services.annotations_mark_pending(labeling_project=labeling_project, annotation_ids=[1, 2])
    closed = LabelStudioClient(url=f"http://127.0.0.1:{free_port()}", retries=1, backoff_seconds=0.01)
    with pytest.raises(LabelStudioUnavailable, match="did not answer to"):
        services.labels_sync_pending(labeling_project=labeling_project, client=closed)
    assert PendingAnnotation.objects.filter(labeling_project=labeling_project).count() == 2
    assert set(PendingAnnotation.objects.values_list("attempts", flat=True)) == {1}


# --- bad webhooks ------------------------------------------------------------------------------


@pytest.fixture
def webhook_target(db):
    world = labeling_world(frames=1, name="Webhook world")
    labeling_project = LabelingProject.objects.create(
        project=world.project, gold_set=world.gold_set, webhook_secret="right-secret", ls_project_id=77, status="ready"
    )
    return labeling_project


def _post(labeling_project, body, secret="right-secret"):
    headers = {"HTTP_X_VIVECAPTION_WEBHOOK_SECRET": secret} if secret is not None else {}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return Client().post(
        f"/labeling/webhook/{labeling_project.id}/", data=data, content_type="application/json", **headers
    )


GOOD = {"action": "ANNOTATION_CREATED", "annotation": {"id": 5, "task": 1}, "project": {"id": 77}}


@pytest.mark.parametrize(
    "body, secret, status",
    [
        (GOOD, None, 401),
        (GOOD, "", 401),
        (GOOD, "wrong-secret", 401),
        (GOOD, "right-secret-but-longer", 401),
        (b"{not json", "right-secret", 400),
        (b"\xff\xfe", "right-secret", 400),
        ([1, 2], "right-secret", 400),
        ({**GOOD, "action": "PROJECT_DELETED"}, "right-secret", 400),
        ({"annotation": {"id": 5}}, "right-secret", 400),
        ({**GOOD, "annotation": {"id": "5"}}, "right-secret", 400),
        ({**GOOD, "annotation": {"id": -3}}, "right-secret", 400),
        ({**GOOD, "annotation": None}, "right-secret", 400),
        ({"action": "ANNOTATIONS_DELETED", "annotations": "all"}, "right-secret", 400),
        ({**GOOD, "project": {"id": 78}}, "right-secret", 400),
    ],
)
def test_bad_webhooks_are_refused_and_change_nothing(webhook_target, body, secret, status):
    response = _post(webhook_target, body, secret)
    assert response.status_code == status
    assert not PendingAnnotation.objects.exists() and not GoldLabel.objects.exists()
    webhook_target.refresh_from_db()
    assert not webhook_target.sync_queued


def test_unknown_labeling_project_answers_like_a_wrong_secret(webhook_target):
    response = Client().post(
        "/labeling/webhook/999999/",
        data=json.dumps(GOOD),
        content_type="application/json",
        HTTP_X_VIVECAPTION_WEBHOOK_SECRET="right-secret",
    )
    assert response.status_code == 401


def test_webhook_get_is_not_allowed(webhook_target):
    assert Client().get(f"/labeling/webhook/{webhook_target.id}/").status_code == 405


# --- a burst ------------------------------------------------------------------------------------


def test_a_burst_of_duplicated_reordered_webhooks_stores_each_annotation_once_with_its_latest_content(
    ls_settings, role_groups
):
    world = labeling_world(frames=40, name="Burst world")
    labeling_project = _start(world, control_fraction=0.0)
    services.labeling_push(labeling_project=labeling_project)
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

    services.labels_sync_pending(labeling_project=labeling_project)
    stored = dict(GoldLabel.objects.filter(labeling_project=labeling_project).values_list("ls_annotation_id", "names"))
    assert stored == latest
