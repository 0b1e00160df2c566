"""Evaluation from the app: leak-free eval sets, a full comparison on the tiny models with a judge
served over the OpenAI protocol (bad answers included), the report and its downloads."""

import csv
import io
import json

import pytest
from django.conf import settings
from django.test import Client
from PIL import Image
from transformers import AutoTokenizer

from apps.captioning.models import Caption
from apps.core.errors import ApplicationError
from apps.curation import services as curation_services
from apps.evaluation import exports
from apps.evaluation.models import CaptionScore
from apps.evaluation.services import comparison_start, eval_set_create
from apps.jobs.inline import job_run_tree
from apps.jobs.models import Job
from apps.media.models import AssetKind
from apps.media.services import asset_add
from apps.modelhub.models import ModelVersion
from apps.modelhub.specs import model_spec_for
from tests.apps.training.world import labelled_project
from tests.factories import UserFactory
from tests.workers.vlm.test_openai_backend import ScriptedServer
from workers.media.assets import prepare_asset


def _extra_frames(project, count: int) -> list[int]:
    ids = []
    for index in range(count):
        image = Image.new("RGB", (64, 40), (10 + index * 30, 200 - index * 20, 90))
        asset, _ = asset_add(project=project, prepared=prepare_asset(image), kind=AssetKind.IMAGE)
        ids.append(asset.id)
    return ids


@pytest.fixture
def models_dir(settings, tmp_path_factory):
    settings.MODELS_DIR = tmp_path_factory.mktemp("models")
    return settings.MODELS_DIR


@pytest.mark.django_db
def test_eval_sets_never_hold_gold_frames_and_a_later_overlap_is_refused(models_dir):
    project, labeling_project, detector, truth = labelled_project(frames=6)
    outside = _extra_frames(project, 5)
    sampled = eval_set_create(project=project, size=300, seed=1, created_by=None)
    assert sampled.frame_ids() == sorted(outside) and sampled.frame_count == 5 and sampled.excluded_gold == 6
    assert (
        eval_set_create(project=project, size=3, seed=1, created_by=None).frame_ids()
        == eval_set_create(project=project, size=3, seed=1, created_by=None).frame_ids()
    )
    with pytest.raises(ApplicationError, match="in the gold set"):
        eval_set_create(project=project, created_by=None, asset_ids=[outside[0], next(iter(truth))])

    # A gold set sampled after the eval set makes the eval set unusable: checked again at launch.
    curation_services.gold_set_create(
        project=project, clustering=None, picks=[(outside[0], 0, "manual")], params={}, created_by=None
    )
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    with pytest.raises(ApplicationError, match=rf"1 evaluation frame\(s\) are in the gold set: {outside[0]}"):
        comparison_start(eval_set=sampled, captioner=captioner, detectors=[detector], created_by=None, enqueue=False)


@pytest.fixture
def judge_server():
    server = ScriptedServer()
    yield server
    server.close()


def _judgement(**scores) -> str:
    return json.dumps({"salient_objects": 7, "characters": 5, "background": 9, "scene": 6, **scores})


@pytest.mark.django_db(transaction=True)
def test_a_comparison_runs_three_pipelines_scores_them_and_reports(models_dir, role_groups, judge_server, monkeypatch):
    project, labeling_project, detector, truth = labelled_project(frames=6)
    eval_ids = _extra_frames(project, 3)
    eval_set = eval_set_create(project=project, size=3, seed=0, created_by=None)
    second = ModelVersion.objects.create(
        project=project, role="detector", name="second-detector", model=detector.model, source="custom"
    )
    judge = ModelVersion.objects.create(
        project=project, role="captioner", name="served-judge", backend="openai", model="judge",
        base_url=judge_server.url, settings={"max_retries": 0, "concurrency": 1},
    )  # fmt: skip
    # 3 pipelines × 3 frames, judged in order: good, fenced, prose, out of range, truncated, good…
    judge_server.script = [
        ("ok", _judgement()),
        ("ok", f"```json\n{_judgement(scene=8)}\n```"),
        ("ok", "I would rather not grade this."),
        ("ok", _judgement(scene=11)),
        ("ok", _judgement()[:-5]),
        ("ok", _judgement(characters=9)),
        ("ok", _judgement(background=10)),
        ("ok", _judgement()),
        ("ok", _judgement(salient_objects=3)),
    ]
    comparison = comparison_start(
        eval_set=eval_set, captioner=ModelVersion.objects.get(project=project, role="captioner", is_default=True),
        detectors=[detector, second], judge=judge, created_by=None, enqueue=False,
    )  # fmt: skip
    job_run_tree(comparison.job_id)
    job = Job.objects.get(id=comparison.job_id)
    assert job.status == "succeeded", job.traceback
    # Every model stage ran as its own job on its own queue; the evaluation itself loads no model.
    stages = sorted((child.kind, child.queue, child.status) for child in job.children.all())
    vlm, embed = settings.VLM_QUEUE, settings.EMBED_QUEUE
    assert job.queue == "cpu" and stages == sorted(
        [("detect", vlm, "succeeded")] * 4  # 2 detectors × (gold test split, eval set)
        + [("caption", vlm, "succeeded")] * 6  # 3 pipelines × (eval set, gold test split)
        + [("evaluation_clipscore", embed, "succeeded"), ("evaluation_judge", vlm, "succeeded")]
    )
    assert job.result["stages"] == 12
    comparison.refresh_from_db()
    report = comparison.report
    assert report["meta"]["profile"] == "tiny" and report["meta"]["pipelines"] == [
        "no detection",
        f"{detector.name} → captioner",
        "second-detector → captioner",
    ]
    # Table 1: both detectors on the gold test split (every final label: no SFT run is involved).
    assert [row["detector"] for row in report["table1"]] == [detector.name, "second-detector"]
    assert all(row["summary"]["n"] == len(truth) for row in report["table1"])
    # Every caption scored; 3 judgements unparsable and excluded, never guessed.
    scores = CaptionScore.objects.filter(pipeline__comparison=comparison)
    assert scores.count() == 9 and set(scores.values_list("asset_id", flat=True)) == set(eval_ids)
    statuses = [s.judge_status for s in scores.order_by("pipeline__position", "asset_id")]
    assert statuses == ["ok", "ok", "unparsable", "unparsable", "unparsable", "ok", "ok", "ok", "ok"]
    raw = {
        (c.run_id, c.asset_id): c.raw_text
        for c in Caption.objects.filter(run__in=[p.caption_run for p in comparison.pipelines.all()])
    }
    for score in scores:  # the untrained tiny captioner often answers nothing at all: 0 tokens, not adherent
        assert score.clip_score is not None
        assert (score.tokens == 0) == (raw[(score.pipeline.caption_run_id, score.asset_id)].strip() == "")
        assert not score.adheres or score.health["parsed"]
    table2 = {row["pipeline"]: row for row in report["table2"]}
    assert table2["no detection"]["judge_overall_n"] == 2
    assert table2["no detection"]["judge_scene_mean"] == 7.0  # (6 + 8) / 2: the valid answers only
    assert {(row["first"], row["second"]) for row in report["table3"]} == {
        ("no detection", f"{detector.name} → captioner"),
        ("no detection", "second-detector → captioner"),
        (f"{detector.name} → captioner", "second-detector → captioner"),
    }
    pair = next(row for row in report["table3"] if row["first"] == f"{detector.name} → captioner")
    assert pair["judge_overall_n"] == 1 and pair["clip_score_n"] == 3  # pairs where both judgements parsed
    assert report["health"]["no detection"]["judge"] == {"ok": 2, "unparsable": 1}

    lead = UserFactory(role="lead")
    project.memberships.create(user=lead)
    client = Client()
    client.force_login(lead)
    page = client.get(f"/projects/{project.id}/evaluation/{comparison.id}/").content.decode()
    assert "tiny</strong> model profile" in page and "Table 3" in page and "second-detector" in page
    rows = list(
        csv.reader(
            io.StringIO(client.get(f"/projects/{project.id}/evaluation/{comparison.id}/report.csv").getvalue().decode())
        )
    )
    assert ["detector", "n", "precision", "recall", "sample_f1", "mistakes", "unparseable"] in rows
    data = json.loads(client.get(f"/projects/{project.id}/evaluation/{comparison.id}/report.json").getvalue())
    assert len(data["captions"]) == 9 and data["meta"]["judge"] == "served-judge"
    assert [(row["pipeline"], row["judge_status"]) for row in data["captions"]] == [
        (score.pipeline.label, score.judge_status) for score in scores.order_by("pipeline__position", "asset_id")
    ]
    # Both files are streamed a chunk of caption rows at a time: chunks of 2 rows give the same files.
    monkeypatch.setattr(exports, "ROWS_PER_CHUNK", 2)
    assert json.loads(client.get(f"/projects/{project.id}/evaluation/{comparison.id}/report.json").getvalue()) == data
    chunked_csv = client.get(f"/projects/{project.id}/evaluation/{comparison.id}/report.csv").getvalue().decode()
    assert list(csv.reader(io.StringIO(chunked_csv))) == rows
    header = rows.index(["# Per caption"]) + 1
    assert rows[header][:2] == ["asset_id", "pipeline"] and "judge_scene" in rows[header] and len(rows) == header + 10
    html = client.get(f"/projects/{project.id}/evaluation/{comparison.id}/report.html")
    assert html["Content-Disposition"].endswith('.html"') and b"<svg" in html.content and b"<script" not in html.content
    # Every caption run has its lengths counted in the captioner's tokens; its health page reads them.
    first_run = comparison.pipelines.get(position=0).caption_run
    tokenizer = AutoTokenizer.from_pretrained(model_spec_for(comparison.captioner).model)
    captions = list(Caption.objects.filter(run=first_run).order_by("asset_id"))
    expected = [len(tokenizer(c.raw_text, add_special_tokens=False)["input_ids"]) for c in captions]
    assert len(captions) == 3 and [c.tokens for c in captions] == expected
    health = client.get(f"/projects/{project.id}/runs/captions/{first_run.id}/health/")
    assert health.status_code == 200 and health.context["health"]["n"] == 3 and health.context["health"]["counted"] == 3
    frames = client.get(
        f"/projects/{project.id}/evaluation/{comparison.id}/frames/", {"detector": detector.name}
    ).content.decode()
    assert frames.count('class="pick"') == len(truth)
