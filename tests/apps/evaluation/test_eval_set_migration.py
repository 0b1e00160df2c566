"""Migration 0004: each eval set's stored list of frame ids becomes a row per frame, in order, and
nothing stored is lost (an eval set made before the upgrade holds the same frames after it)."""

import pytest

from tests.apps.captioning.test_frames_migration import _migrate, latest_schema_after  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("evaluation", "0003_comparison_inputs_key")]
AFTER = [("evaluation", "0005_eval_set_asset_ids_removed")]


def test_an_eval_sets_list_of_frame_ids_becomes_rows_in_its_order(project, latest_schema_after):  # noqa: F811
    old = _migrate(BEFORE)
    Asset = old.get_model("media", "Asset")
    assets = [
        Asset.objects.create(project_id=project.id, kind="frame", sha256=f"{i:064d}", width=4, height=4, image="x.png")
        for i in range(4)
    ]
    EvalSet = old.get_model("evaluation", "EvalSet")
    order = [assets[0].id, assets[2].id, assets[3].id]
    gone = 10**9  # an asset deleted since: every reader skipped it
    kept = EvalSet.objects.create(project_id=project.id, name="e", requested=3, asset_ids=order)
    sparse = EvalSet.objects.create(project_id=project.id, name="f", requested=2, asset_ids=[assets[1].id, gone])

    new = _migrate(AFTER)
    EvalSet = new.get_model("evaluation", "EvalSet")
    migrated = EvalSet.objects.get(id=kept.id)
    assert list(migrated.frames.order_by("position").values_list("position", "asset_id")) == list(enumerate(order))
    assert migrated.frame_count == 3
    sparse = EvalSet.objects.get(id=sparse.id)
    assert list(sparse.frames.values_list("asset_id", flat=True)) == [assets[1].id] and sparse.frame_count == 1

    back = _migrate(BEFORE)  # and back down: the lists again
    assert back.get_model("evaluation", "EvalSet").objects.get(id=kept.id).asset_ids == order
