"""Whose answers count (read-time, from the accounts the app made), the labelling page's poll, and
the project page's Label Studio status — without a Label Studio."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.services import user_set_role
from apps.core.permissions import Role
from apps.labeling import selectors, services
from apps.labeling.client import LabelStudioClient
from apps.labeling.models import GoldLabel, LabelingProject, LabelingTask, LabelStudioAccount, PendingAnnotation
from apps.labeling.services._common import data_changed
from apps.modelhub.models import ModelVersion
from apps.training.services import training_run_start
from tests.apps.labeling.world import labeling_world, labelling_member
from tests.factories import UserFactory
from tests.labelstudio import SilentServer

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _labelled_world(frames=6):
    world = labeling_world(frames=frames, name="Counting world")
    lp = LabelingProject.objects.create(
        project=world.project, gold_set=world.gold_set, webhook_secret="s", ls_project_id=5, status="ready"
    )
    tasks = [
        LabelingTask.objects.create(labeling_project=lp, asset=asset, ls_task_id=100 + i)
        for i, asset in enumerate(world.assets)
    ]
    return world, lp, tasks


def _answer(lp, task, ls_user_id, email, names, annotation_id):
    return GoldLabel.objects.create(
        labeling_project=lp, task=task, asset=task.asset, names=names, ls_user_id=ls_user_id, ls_user_email=email,
        ls_annotation_id=annotation_id, ls_updated_at=timezone.now(),
    )  # fmt: skip


def test_only_answers_from_accounts_the_app_made_for_labelling_members_count(client):
    world, lp, tasks = _labelled_world()
    annotator = labelling_member(world.project, "ann")
    reviewer = labelling_member(world.project, "rev", role="reviewer")
    outsider = UserFactory(username="out", email="out@example.com", role="annotator")  # not a member
    LabelStudioAccount.objects.create(user=annotator, ls_user_id=21, ls_email="ann@example.com")
    LabelStudioAccount.objects.create(user=reviewer, ls_user_id=22, ls_email="rev@example.com")
    LabelStudioAccount.objects.create(user=outsider, ls_user_id=23, ls_email="out@example.com")
    for i, task in enumerate(tasks):
        _answer(lp, task, 21, "ann@example.com", ["Ellie"], 1 + i)  # counts
    _answer(lp, tasks[0], 22, "rev@example.com", ["Victor"], 50)  # a reviewer: would make a conflict
    _answer(lp, tasks[1], 23, "out@example.com", ["Victor"], 51)  # not a member
    _answer(lp, tasks[2], 24, "ann2@example.com", ["Victor"], 52)  # signed up by someone, never made by the app
    _answer(lp, tasks[3], 25, "ann@example.com", ["Victor"], 53)  # the annotator's e-mail, another account
    _answer(lp, tasks[4], 21, "changed@example.com", ["Victor"], 54)  # the account's e-mail changed since

    expected = {task.asset_id: ["Ellie"] for task in tasks}
    assert selectors.gold_label_map(lp) == expected
    assert {frame.status for frame in selectors.frame_labels(lp).values()} == {"single"}
    assert [row.annotator for row in selectors.annotator_progress(lp)] == ["ann"]
    reasons = {row.ls_annotation_id: row.reason for row in selectors.ignored_labels(lp)}
    assert sorted(reasons) == [50, 51, 52, 53, 54]
    assert "rev is a reviewer" in reasons[50] and "out is not a member of this project" in reasons[51]
    assert "the app did not make this Label Studio account" in reasons[52]
    assert "the app did not make this Label Studio account" in reasons[53]
    assert reasons[52].startswith("ann2@example.com (Label Studio user 24) is not a labelling member of this project")
    assert "now reports another e-mail" in reasons[54]
    assert GoldLabel.objects.filter(labeling_project=lp).count() == 11  # all kept

    # Training reads the same final labels: the ignored answers never reach a split.
    detector = ModelVersion.objects.get(project=world.project, role="detector", is_default=True)
    run = training_run_start(base_version=detector, labeling_project=lp, created_by=None, enqueue=False)
    assert {int(k): v for k, v in {**run.train_labels, **run.validation_labels}.items()} == expected

    # Decided when read: a role taken away takes the answers out at once, and giving it back returns them.
    user_set_role(user=annotator, role=Role.REVIEWER)
    assert selectors.gold_label_map(lp) == {}
    user_set_role(user=annotator, role=Role.ANNOTATOR)
    assert selectors.gold_label_map(lp) == expected
    annotator.memberships.all().delete()
    assert selectors.gold_label_map(lp) == {}

    # The page lists the ignored answers with why (escaped like every Label Studio string).
    lead = labelling_member(world.project, "boss", role="lead")
    client.force_login(lead)
    page = client.get(f"/projects/{world.project.id}/labeling/{lp.id}/").content.decode()
    assert "Ignored annotations (11)" in page and "ann is not a member of this project" in page


def _poll(client, world, lp, version=None):
    suffix = f"&v={version}" if version else ""
    return client.get(f"/projects/{world.project.id}/labeling/{lp.id}/?fragment=live{suffix}", **HTMX)


def test_the_poll_stops_when_nothing_is_pending_and_an_unchanged_poll_costs_a_few_queries(client, monkeypatch):
    world, lp, tasks = _labelled_world(frames=3)
    annotator = labelling_member(world.project, "ann")
    LabelStudioAccount.objects.create(user=annotator, ls_user_id=21, ls_email="ann@example.com")
    _answer(lp, tasks[0], 21, "ann@example.com", ["Ellie"], 1)
    client.force_login(labelling_member(world.project, "boss", role="lead"))
    computed = []
    real_summary = selectors._summary
    monkeypatch.setattr(selectors, "_summary", lambda *args: computed.append(1) or real_summary(*args))

    # Nothing pending: 286 stops htmx polling; the fragment says so and carries no trigger.
    response = _poll(client, world, lp)
    assert response.status_code == 286
    body = response.content.decode()
    assert "live updates are paused" in body and 'hx-trigger="every 3s"' not in body
    page = client.get(f"/projects/{world.project.id}/labeling/{lp.id}/").content.decode()
    assert 'hx-trigger="every 3s"' not in page
    assert len(computed) == 1  # the page reused what the poll computed

    # A webhook arrived: the page polls, and each unchanged poll answers 204 cheaply.
    PendingAnnotation.objects.create(labeling_project=lp, ls_annotation_id=99)
    lp.refresh_from_db()
    key = selectors.labeling_summary_key(lp).key
    page = client.get(f"/projects/{world.project.id}/labeling/{lp.id}/").content.decode()
    assert 'hx-trigger="every 3s"' in page and f"v={key}" in page
    counts = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            assert _poll(client, world, lp, key).status_code == 204
        counts.append(len(queries))
    assert counts[0] == counts[1] == counts[2] <= 12, counts
    assert len(computed) == 1

    # A change (the sync stored a label): computed once, then unchanged polls again.
    _answer(lp, tasks[1], 21, "ann@example.com", ["Victor"], 2)
    data_changed(lp)
    response = _poll(client, world, lp, key)
    assert response.status_code == 200 and len(computed) == 2
    lp.refresh_from_db()
    new_key = selectors.labeling_summary_key(lp).key
    assert new_key != key and f"v={new_key}" in response.content.decode()
    assert _poll(client, world, lp, new_key).status_code == 204
    assert client.get(f"/projects/{world.project.id}/labeling/{lp.id}/").status_code == 200
    assert len(computed) == 2

    # Recent changes keep it live for a while after the webhooks are handled; then it stops.
    PendingAnnotation.objects.all().delete()
    assert _poll(client, world, lp, new_key).status_code == 204
    LabelingProject.objects.filter(id=lp.id).update(data_changed_at=timezone.now() - timedelta(minutes=5))
    assert _poll(client, world, lp, new_key).status_code == 286

    # A role change is a change too: the annotator's answers leave the summary.
    user_set_role(user=annotator, role=Role.REVIEWER)
    response = _poll(client, world, lp, new_key)
    assert response.status_code == 286 and len(computed) == 3 and "Ignored annotations (2)" in response.content.decode()


@pytest.fixture
def silent_label_studio(settings):
    server = SilentServer()  # accepts and never answers: a page that asked it would hang
    settings.LABEL_STUDIO_URL = settings.LABEL_STUDIO_PUBLIC_URL = server.url
    settings.LABEL_STUDIO_TOKEN = "token"
    yield server
    server.close()


def test_project_pages_never_contact_label_studio(silent_label_studio, client, django_capture_on_commit_callbacks):
    world, lp, _ = _labelled_world(frames=1)
    client.force_login(labelling_member(world.project, "boss", role="lead"))
    with django_capture_on_commit_callbacks() as queued:
        for path in (f"/projects/{world.project.id}/", f"/projects/{world.project.id}/labeling/"):
            assert client.get(path).status_code == 200
        fragment = client.get(f"/projects/{world.project.id}/labeling/health/")
        assert fragment.status_code == 200 and "not checked yet" in fragment.content.decode()
        client.get(f"/projects/{world.project.id}/labeling/health/")  # asked once a minute at most
    assert silent_label_studio.count == 0
    assert len(queued) == 1  # the worker is asked for a reading (check_health on the cpu queue)

    # What the worker (beat, pushes, syncs) learns is what the fragment shows.
    services.labelstudio_health_record(up=False, detail="Label Studio did not answer")
    assert "Label Studio unreachable" in client.get(f"/projects/{world.project.id}/labeling/health/").content.decode()
    services.labelstudio_health_check(client=LabelStudioClient(timeout=0.3, retries=0))
    assert silent_label_studio.count == 1  # the worker's check, not a page
    assert "Label Studio unreachable" in client.get(f"/projects/{world.project.id}/labeling/health/").content.decode()
    services.labelstudio_health_record(up=True, detail="Label Studio 1.23.2")
    assert "Label Studio up" in client.get(f"/projects/{world.project.id}/labeling/health/").content.decode()
    assert silent_label_studio.count == 1


def test_making_accounts_without_label_studio_says_so(client, settings):
    world, _, _ = _labelled_world(frames=1)
    settings.LABEL_STUDIO_URL = settings.LABEL_STUDIO_TOKEN = ""
    client.force_login(labelling_member(world.project, "boss", role="lead"))
    response = client.post(f"/projects/{world.project.id}/labeling/accounts/", follow=True)
    assert response.redirect_chain[-1][0] == f"/projects/{world.project.id}/labeling/"
    assert "Label Studio is not configured" in response.content.decode()
