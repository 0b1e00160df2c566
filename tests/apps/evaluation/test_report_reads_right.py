"""The report reads right on any data: pipelines that scored every frame the same show "no
difference" (not p = 1.000 results, not a list of zero differences), a judge that parsed nothing
says so, and an empty caption counts as four empty fields on the caption-health page."""

import pytest
from django.test import Client

from apps.captioning.models import Caption, CaptionRun
from apps.captioning.services import run_frames_set
from apps.evaluation import report as report_builder
from apps.evaluation.models import CaptionScore
from apps.evaluation.services import comparison_report_save, comparison_start, eval_set_create
from apps.modelhub.models import ModelVersion as Version
from tests.apps.evaluation.test_evaluation import _extra_frames
from tests.apps.training.world import labelled_project
from tests.factories import UserFactory
from workers.metrics.judge import JUDGE_FIELDS

pytestmark = pytest.mark.django_db


def _comparison_with_scores(clip: dict[str, list[float]], judge_status: str):
    project, _, detector, _ = labelled_project(frames=3)
    ids = _extra_frames(project, 4)
    eval_set = eval_set_create(project=project, size=4, seed=0, created_by=None)
    captioner = Version.objects.get(project=project, role="captioner", is_default=True)
    judge = Version.objects.create(project=project, role="captioner", name="a-judge", model=captioner.model)
    comparison = comparison_start(
        eval_set=eval_set, captioner=captioner, detectors=[detector], judge=judge, created_by=None, enqueue=False
    )
    for pipeline in comparison.pipelines.all():
        for asset_id, value in zip(ids, clip[pipeline.label], strict=True):
            judged = {field: 5 for field in JUDGE_FIELDS} if judge_status == "ok" else {}
            CaptionScore.objects.create(
                pipeline=pipeline, asset_id=asset_id, tokens=40, clip_score=value, judge_status=judge_status,
                judge_scores=judged, judge_overall=5.0 if judged else None, judge_raw="I cannot grade this.",
            )  # fmt: skip
    report = report_builder.build(comparison, {"token_unit": "tokens", "clip_model": "tiny", "judge": "a-judge"})
    comparison_report_save(comparison=comparison, report=report)
    lead = UserFactory(role="lead")
    project.memberships.create(user=lead)
    client = Client()
    client.force_login(lead)
    page = client.get(f"/projects/{project.id}/evaluation/{comparison.id}/").content.decode()
    return comparison, report, page


def test_pipelines_that_score_every_frame_the_same_show_no_difference():
    same = [20.0, 22.5, 19.0, 25.0]
    comparison, report, page = _comparison_with_scores(
        {label: same for label in ("no detection", "tiny-qwen2.5-vl → captioner")}, judge_status="unparsable"
    )
    (pair,) = report["table3"]
    assert pair["clip_score_no_difference"] is True and pair["clip_score_n"] == 4
    assert report["examples"] == [] and report["examples_compared"] == {
        "score": "clip_score",
        "frames": 4,
        "differing": 0,
    }
    assert "no difference: both pipelines scored every one of these frames the same" in page
    assert "No difference: the two pipelines have the same clip_score on all 4 frames they share." in page
    # The judge answered every caption and parsed none: said, not shown as an empty row alone.
    assert page.count("not one answer could be parsed (unparsable: 4)") == 2
    assert report["meta"]["judge_constant"] is False and "cannot tell these captions apart" not in page


def test_pipelines_that_differ_list_only_the_frames_where_they_differ():
    _, report, page = _comparison_with_scores(
        {"no detection": [20.0, 22.0, 19.0, 25.0], "tiny-qwen2.5-vl → captioner": [20.0, 24.0, 19.0, 21.0]},
        judge_status="ok",
    )
    (pair,) = report["table3"]
    # The judge gave every caption 5: that row alone says "no difference".
    assert pair["clip_score_no_difference"] is False and pair["judge_overall_no_difference"] is True
    assert [(e["asset_id"] - report["examples"][0]["asset_id"], e["difference"]) for e in report["examples"]] == [
        (0, -4.0),
        (-2, 2.0),
    ]
    assert report["examples_compared"]["differing"] == 2
    assert "No difference: the two pipelines" not in page and "not one answer could be parsed" not in page
    # A judge that gave every caption the same score is said to tell them apart in no way.
    assert report["meta"]["judge_constant"] is True and "it cannot tell these captions apart" in page


def test_an_empty_caption_counts_as_four_empty_fields_on_the_health_page():
    project, _, _, _ = labelled_project(frames=2)
    (asset_id,) = _extra_frames(project, 1)
    captioner = Version.objects.get(project=project, role="captioner", is_default=True)
    run = CaptionRun.objects.create(project=project, model_version=captioner, pipeline="no_detection")
    run_frames_set(run=run, asset_ids=[asset_id])
    Caption.objects.create(run=run, asset_id=asset_id, raw_text="", fields={}, ok=False, tokens=0)
    lead = UserFactory(role="lead")
    project.memberships.create(user=lead)
    client = Client()
    client.force_login(lead)
    health = client.get(f"/projects/{project.id}/runs/captions/{run.id}/health/").context["health"]
    assert health["n"] == 1 and health["adheres"] == 0
    assert health["empty_fields"] == {"scene": 1, "background": 1, "characters": 1, "salient_objects": 1}
