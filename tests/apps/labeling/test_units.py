"""Label config escaping, prediction validation, signed links, and the report selectors."""

import json
from datetime import timedelta
from xml.etree import ElementTree

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from apps.labeling import selectors
from apps.labeling.client import prediction_errors
from apps.labeling.label_config import choices_result, label_config, names_from_result
from apps.labeling.links import file_link_parse, file_link_url
from apps.labeling.models import GoldLabel, GoldResolution, LabelingProject, LabelingTask, LabelStudioAccount
from apps.labeling.services import control_asset_ids
from tests.apps.labeling.world import labeling_world, labelling_member
from tests.factories import UserFactory

HOSTILE = 'Evil" onload="alert(1)<script>&'


def test_label_config_escapes_names_and_urls_and_parses():
    config = label_config([(HOSTILE, 'http://app/x?a=1&b="2"><script>'), ("Plain", "")])
    root = ElementTree.fromstring(config)  # well-formed despite the hostile strings
    hostile, plain = root.iter("Choice")
    assert hostile.get("value") == HOSTILE and plain.get("value") == "Plain" and plain.get("html") is None
    html = hostile.get("html")  # the markup Label Studio renders: the name is text, the URL one attribute
    assert "&lt;script&gt;&amp;" in html


def test_predictions_are_validated_against_the_config():
    config = label_config([("Ellie", ""), ("Victor", "")])
    assert prediction_errors(config, {"model_version": "m", "result": choices_result(["Ellie", "Victor"])}) == []
    assert prediction_errors(config, {"model_version": "m", "result": []}) == []
    assert prediction_errors(config, {"model_version": "m", "result": choices_result(["Bob"])})


def test_names_round_trip_through_results_and_ignore_other_controls():
    result = choices_result(["Victor", "Ellie"]) + [
        {"from_name": "other", "type": "choices", "value": {"choices": ["X"]}}
    ]
    assert names_from_result(result) == ["Ellie", "Victor"]
    assert names_from_result([]) == [] and names_from_result(None) == []


def test_control_slice_is_seeded_and_stable():
    ids = list(range(100, 150))
    first = control_asset_ids(ids, 0.2, seed=4)
    assert len(first) == 10 and first == control_asset_ids(list(reversed(ids)), 0.2, seed=4)
    assert first != control_asset_ids(ids, 0.2, seed=5)
    assert control_asset_ids(ids, 0.0, seed=4) == set()


@pytest.mark.django_db
def test_signed_links_serve_one_file_and_refuse_forged_or_old_ones(settings):
    world = labeling_world(frames=1, name="Links world")
    asset = world.assets[0]
    url = file_link_url("asset", asset.id)
    path = url.removeprefix(settings.LABELING_APP_URL)
    settings.LABEL_STUDIO_PUBLIC_URL = "http://ls.example:8080/"
    response = Client().get(path)  # no session needed
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response["Access-Control-Allow-Origin"] == "http://ls.example:8080"
    token = path.rstrip("/").split("/")[-1]
    assert Client().get(path.replace(token, token[:-2] + "xx")).status_code == 404
    forged = signing.dumps({"k": "asset", "i": asset.id + 1000, "v": "image"}, salt="another-salt")
    assert Client().get(f"/labeling/files/{forged}/").status_code == 404
    settings.LABELING_IMAGE_LINK_MAX_AGE_SECONDS = -1  # every link is now too old
    with pytest.raises(signing.SignatureExpired):
        file_link_parse(token)
    assert Client().get(path).status_code == 404


@pytest.mark.django_db
def test_frame_labels_agreement_anchoring_and_distribution(client):
    world = labeling_world(frames=4, name="Report world")
    a, b = labelling_member(world.project, "a1"), labelling_member(world.project, "a2", role="lead")
    accounts = {
        user.id: LabelStudioAccount.objects.create(user=user, ls_user_id=10 + i, ls_email=user.email)
        for i, user in enumerate((a, b))
    }
    lp = LabelingProject.objects.create(
        project=world.project, gold_set=world.gold_set, webhook_secret="s", ls_project_id=9
    )
    f0, f1, f2, f3 = world.assets
    tasks = {
        f0.id: LabelingTask.objects.create(labeling_project=lp, asset=f0, ls_task_id=1, predicted_names=["Ellie"]),
        f1.id: LabelingTask.objects.create(labeling_project=lp, asset=f1, ls_task_id=2, predicted_names=["Victor"]),
        f2.id: LabelingTask.objects.create(
            labeling_project=lp, asset=f2, ls_task_id=3, predicted_names=["Ellie"], is_control=True
        ),
        f3.id: LabelingTask.objects.create(labeling_project=lp, asset=f3, ls_task_id=4, predicted_names=[]),
    }
    now = timezone.now()
    answers = [
        (f0, a, ["Ellie"], False),  # accepts the prediction
        (f0, b, ["Ellie"], False),  # agrees
        (f1, a, ["Victor"], False),  # accepts
        (f1, b, ["Ellie", "Victor"], False),  # disagrees → conflict
        (f2, a, ["Victor"], False),  # control: the hidden prediction (Ellie) was wrong
        (f3, a, [], True),  # skipped: does not count
    ]
    for index, (asset, user, names, cancelled) in enumerate(answers):
        GoldLabel.objects.create(
            labeling_project=lp, task=tasks[asset.id], asset=asset, names=names, annotator=user,
            ls_user_id=accounts[user.id].ls_user_id, ls_user_email=user.email,
            ls_annotation_id=index + 1, ls_updated_at=now - timedelta(minutes=index), was_cancelled=cancelled,
        )  # fmt: skip
    frames = selectors.frame_labels(lp)
    assert [frames[x.id].status for x in world.assets] == ["agreed", "conflict", "single", "unlabelled"]
    agreement = selectors.agreement(lp, frames)
    assert agreement.frames_with_several == 2 and agreement.unanimous == 1
    assert agreement.mean_pairwise_jaccard == pytest.approx((1.0 + 0.5) / 2)
    anchoring = selectors.anchoring(lp, frames)
    assert anchoring.prefilled_answers == 4 and anchoring.accepted_unchanged == pytest.approx(0.75)
    assert anchoring.control_frames == 1 and anchoring.control_accuracy == 0.0
    assert anchoring.gap == pytest.approx(0.75)

    GoldResolution.objects.create(labeling_project=lp, asset=f1, names=["Victor"])
    assert selectors.gold_label_map(lp) == {f0.id: ["Ellie"], f1.id: ["Victor"], f2.id: ["Victor"]}
    distribution = dict(selectors.character_distribution(lp))
    assert distribution["Ellie"] == 1 and distribution["Victor"] == 2 and distribution["(nobody)"] == 0
    progress = {row.annotator: row for row in selectors.annotator_progress(lp)}
    assert progress["a1"].labelled == 3 and progress["a1"].skipped == 1 and progress["a1"].remaining == 0
    assert progress["a2"].remaining == 2

    # The page hands the chart its data as JSON (an object, not a string inside a string).
    lead = UserFactory(username="boss", role="lead")
    lp.project.memberships.create(user=lead)
    client.force_login(lead)
    page = client.get(f"/projects/{lp.project_id}/labeling/{lp.id}/").content.decode()
    data = json.loads(page.split('id="distribution-data" type="application/json">')[1].split("</script>")[0])
    assert dict(zip(data["names"], data["counts"], strict=True)) == distribution
    assert "a1" in page and "1 resolved by a lead" in page
