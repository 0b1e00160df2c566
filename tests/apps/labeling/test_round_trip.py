"""The whole round trip against a real Label Studio: push → annotate as a browser does → webhook →
GoldLabels; then the reconciliation repairs a dropped webhook and a deletion."""

import time
from datetime import timedelta
from xml.etree import ElementTree

import httpx
import pytest
from django.utils import timezone

from apps.labeling import selectors, services
from apps.labeling.browser import LabelStudioBrowser
from apps.labeling.client import LabelStudioClient
from apps.labeling.label_config import choices_result
from apps.labeling.models import GoldLabel, LabelingProject, PendingAnnotation
from tests.apps.labeling.world import ROSTER, in_label_studio, labeling_world, labelling_member

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _pushed(world, control_fraction=0.34):
    labeling_project = services.labeling_project_start(
        gold_set=world.gold_set,
        detection_run=world.detection_run,
        control_fraction=control_fraction,
        created_by=None,
        enqueue=False,
    )
    outcome = services.labeling_push(labeling_project=labeling_project)
    labeling_project.refresh_from_db()
    return labeling_project, outcome


def test_push_creates_tasks_with_validated_predictions_and_a_control_slice(ls_settings, role_groups):
    world = labeling_world(frames=6, name="Push world")
    labeling_project, outcome = _pushed(world)

    assert labeling_project.status == "ready" and labeling_project.ls_webhook_id
    assert outcome["tasks_imported"] == 6 and outcome["control_tasks"] == 2
    sdk = LabelStudioClient().sdk
    remote_project = sdk.projects.get(id=labeling_project.ls_project_id)
    assert remote_project.model_version == "tiny-qwen2.5-vl"
    choices = ElementTree.fromstring(remote_project.label_config).iter("Choice")
    assert [choice.get("value") for choice in choices] == sorted(ROSTER, key=str.casefold)  # escaped, intact
    tasks = {task.ls_task_id: task for task in labeling_project.tasks.all()}
    for remote in sdk.tasks.list(project=labeling_project.ls_project_id, fields="all"):
        task = tasks[remote.id]
        assert remote.data["asset_id"] == task.asset_id
        predictions = sdk.predictions.list(task=remote.id)
        if task.is_control:
            assert list(predictions) == []
        else:
            (prediction,) = list(predictions)
            assert prediction.model_version == "tiny-qwen2.5-vl" and prediction.score == 1.0  # a clean answer
            expected = world.predicted[task.asset_id]
            assert [c for r in prediction.result for c in r["value"]["choices"]] == expected
        # The image link works without a session, with CORS for Label Studio's origin.
        image = httpx.get(remote.data["image"], headers={"Origin": ls_settings.LABEL_STUDIO_URL})
        assert image.status_code == 200 and image.headers["access-control-allow-origin"] == ls_settings.LABEL_STUDIO_URL
    assert sum(task.is_control for task in tasks.values()) == 2
    # The thumbnails in the config are signed links too, and they load.
    html = next(ElementTree.fromstring(remote_project.label_config).iter("Choice")).get("html")
    thumbnail = html.split('src="')[1].split('"')[0].replace("&amp;", "&")
    assert httpx.get(thumbnail).status_code == 200


def test_annotations_come_back_through_webhooks_and_reconciliation(ls_settings, role_groups):
    world = labeling_world(frames=5, name="Round trip world")
    annotator = labelling_member(world.project, "ann")
    in_label_studio(annotator, "annotator-pass-1")
    labeling_project, _ = _pushed(world, control_fraction=0.2)
    tasks = list(labeling_project.tasks.order_by("id"))
    wanted = {task.asset_id: sorted(ROSTER[(i + 1) % 3 :]) for i, task in enumerate(tasks)}

    with LabelStudioBrowser(ls_settings.LABEL_STUDIO_URL) as browser:
        browser.log_in(annotator.email, "annotator-pass-1")
        created = {
            task.asset_id: browser.annotate(task.ls_task_id, choices_result(wanted[task.asset_id])) for task in tasks
        }

    # Every annotation's webhook arrived (Label Studio sends them synchronously)…
    ids = {annotation["id"] for annotation in created.values()}
    assert _wait_for(
        lambda: (
            set(
                PendingAnnotation.objects.filter(labeling_project=labeling_project).values_list(
                    "ls_annotation_id", flat=True
                )
            )
            == ids
        )
    )
    assert LabelingProject.objects.get(id=labeling_project.id).sync_queued
    # …and the sync (what the cpu worker runs) stores exactly what was ticked.
    outcome = services.labels_sync_pending(labeling_project=labeling_project)
    assert outcome["stored"] == 5 and not PendingAnnotation.objects.filter(labeling_project=labeling_project).exists()
    labels = {label.asset_id: label for label in GoldLabel.objects.filter(labeling_project=labeling_project)}
    assert {asset_id: label.names for asset_id, label in labels.items()} == wanted
    assert all(label.annotator == annotator and label.ls_user_email == annotator.email for label in labels.values())
    assert selectors.gold_label_map(labeling_project) == wanted

    # A change in Label Studio comes back the same way.
    first = tasks[0].asset_id
    with LabelStudioBrowser(ls_settings.LABEL_STUDIO_URL) as browser:
        browser.log_in(annotator.email, "annotator-pass-1")
        browser.change(created[first]["id"], choices_result(["Victor"]))
        # A dropped webhook: this annotation's notification never reaches us.
        dropped = browser.annotate(tasks[1].ls_task_id, choices_result(["Ellie", "Victor"]))
        browser.delete(created[tasks[2].asset_id]["id"])
    PendingAnnotation.objects.filter(ls_annotation_id=dropped["id"]).delete()
    services.labels_sync_pending(labeling_project=labeling_project)
    assert GoldLabel.objects.get(ls_annotation_id=created[first]["id"]).names == ["Victor"]
    assert GoldLabel.objects.get(ls_annotation_id=created[tasks[2].asset_id]["id"]).deleted
    assert not GoldLabel.objects.filter(ls_annotation_id=dropped["id"]).exists()

    # The reconciliation pages through Label Studio and repairs what the webhook missed.
    repaired = services.labels_reconcile(labeling_project=labeling_project)
    assert repaired["stored"] == 1 and repaired["annotations"] == 5
    assert GoldLabel.objects.get(ls_annotation_id=dropped["id"]).names == ["Ellie", "Victor"]
    # Frame 2 now has a second, different answer → conflict until a lead resolves it.
    frames = selectors.frame_labels(labeling_project)
    assert frames[tasks[1].asset_id].status == "conflict"
    assert frames[tasks[2].asset_id].status == "unlabelled"  # its only answer was deleted
    # Running it again changes nothing.
    again = services.labels_reconcile(labeling_project=labeling_project)
    assert again["stored"] == 0 and again["unchanged"] == 5 and again["relinked"] == 0
    assert GoldLabel.objects.filter(labeling_project=labeling_project).count() == 6

    # Image links past half their lifetime are signed again, so annotators never meet an expired one.
    before = {t["id"]: t["data"]["image"] for t in LabelStudioClient().tasks(project_id=labeling_project.ls_project_id)}
    LabelingProject.objects.filter(id=labeling_project.id).update(
        images_signed_at=timezone.now() - timedelta(seconds=ls_settings.LABELING_IMAGE_LINK_MAX_AGE_SECONDS)
    )
    time.sleep(1.1)  # signatures carry a timestamp in seconds
    assert services.labels_reconcile(labeling_project=labeling_project)["relinked"] == 5
    after = {t["id"]: t["data"] for t in LabelStudioClient().tasks(project_id=labeling_project.ls_project_id)}
    assert len(before) == 5
    assert all(after[i]["image"] != before[i] and httpx.get(after[i]["image"]).status_code == 200 for i in before)
    assert {data["asset_id"] for data in after.values()} == {task.asset_id for task in tasks}
