"""Label Studio down, slow or failing; bad webhooks; a burst of duplicated, reordered webhooks."""

import pytest

from apps.jobs.runner import job_execute
from apps.labeling import services
from apps.labeling.client import LabelStudioClient, LabelStudioUnavailable
from apps.labeling.models import PendingAnnotation
from tests.apps.labeling.world import labeling_world
from tests.labelstudio import Rule, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def _start(world, **kwargs):
    return services.labeling_project_start(
        gold_set=world.gold_set, detection_run=world.detection_run, created_by=None, enqueue=False, **kwargs
    )


def _remote_task_count(labeling_project) -> int:
    return len(list(LabelStudioClient().tasks(project_id=labeling_project.ls_project_id)))


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


# --- a burst ------------------------------------------------------------------------------------
