"""Migration 0005: each run's stored list of frame ids becomes a row per frame, in order, and
nothing stored is lost (a run made before the upgrade reads the same frames after it)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("captioning", "0004_captionrun_inputs_key_detectionrun_inputs_key")]
AFTER = [("captioning", "0006_run_asset_ids_removed")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def latest_schema_after():
    """The tests after this one need the newest schema back, whatever happens here."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_lists_of_frame_ids_become_rows_in_their_order(project, latest_schema_after):
    old = _migrate(BEFORE)
    Asset = old.get_model("media", "Asset")
    assets = [
        Asset.objects.create(project_id=project.id, kind="frame", sha256=f"{i:064d}", width=4, height=4, image="x.png")
        for i in range(4)
    ]
    version = old.get_model("modelhub", "ModelVersion").objects.create(
        project_id=project.id, role="detector", name="d", model="m"
    )
    DetectionRun = old.get_model("captioning", "DetectionRun")
    CaptionRun = old.get_model("captioning", "CaptionRun")
    order = [assets[2].id, assets[0].id, assets[3].id]
    detection = DetectionRun.objects.create(project_id=project.id, model_version=version, asset_ids=order)
    gone = 10**9  # an asset deleted since: every reader skipped it
    captions = CaptionRun.objects.create(
        project_id=project.id, model_version=version, pipeline="no_detection", asset_ids=[assets[1].id, gone]
    )

    new = _migrate(AFTER)
    detection = new.get_model("captioning", "DetectionRun").objects.get(id=detection.id)
    captions = new.get_model("captioning", "CaptionRun").objects.get(id=captions.id)
    assert list(detection.frames.order_by("position").values_list("position", "asset_id")) == list(enumerate(order))
    assert detection.frame_count == 3
    assert list(captions.frames.values_list("asset_id", flat=True)) == [assets[1].id] and captions.frame_count == 1

    back = _migrate(BEFORE)  # and back down: the lists again
    assert back.get_model("captioning", "DetectionRun").objects.get(id=detection.id).asset_ids == order
