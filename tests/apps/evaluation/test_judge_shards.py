"""The judge over an eval set bigger than a shard: split into shard jobs that any worker takes,
each judging every pipeline's captions of its frames, none asked twice (a retried shard skips
what it stored), the same report as one job would make."""

import json

import pytest

from apps.captioning.models import DetectionRun
from apps.evaluation import handlers as evaluation_handlers
from apps.evaluation.handlers import evaluation_judge_shard
from apps.evaluation.models import CaptionScore
from apps.evaluation.services import comparison_start, eval_set_create
from apps.jobs.inline import job_run_tree
from apps.jobs.models import Job
from apps.jobs.runner import JobContext
from apps.modelhub.models import ModelVersion
from tests.apps.evaluation.test_evaluation import _extra_frames
from tests.apps.training.world import labelled_project
from tests.workers.vlm.test_openai_backend import ScriptedServer


@pytest.fixture
def judge_server():
    server = ScriptedServer()
    yield server
    server.close()


@pytest.mark.django_db(transaction=True)
def test_the_judge_runs_in_shards_and_judges_every_caption_once(
    settings, tmp_path, role_groups, judge_server, monkeypatch
):
    settings.MODELS_DIR = tmp_path / "models"
    settings.RUN_SHARD_FRAMES = 2
    monkeypatch.setattr(evaluation_handlers, "CLIP_FRAMES_PER_CHUNK", 2)  # CLIPScore in chunks of 2 frames
    project, _, detector, _ = labelled_project(frames=6)
    eval_ids = _extra_frames(project, 3)
    eval_set = eval_set_create(project=project, size=3, seed=0, created_by=None)
    judge = ModelVersion.objects.create(
        project=project, role="captioner", name="served-judge", backend="openai", model="judge",
        base_url=judge_server.url, settings={"max_retries": 0, "concurrency": 1},
    )  # fmt: skip
    scene_scores = [2, 3, 4, 5, 6, 7]  # 2 pipelines × 3 frames, each answer its own scene score
    judge_server.script = [
        ("ok", json.dumps({"salient_objects": 7, "characters": 5, "background": 9, "scene": scene}))
        for scene in scene_scores
    ]
    comparison = comparison_start(
        eval_set=eval_set, captioner=ModelVersion.objects.get(project=project, role="captioner", is_default=True),
        detectors=[detector], judge=judge, created_by=None, enqueue=False,
    )  # fmt: skip
    job = job_run_tree(comparison.job_id, poll_seconds=0.05)
    assert job.status == "succeeded", job.traceback

    runs = [DetectionRun.objects.get(job=stage) for stage in job.children.filter(kind="detect")]
    assert {run.frames_from for run in runs} == {
        f"the eval set of comparison #{comparison.id}",
        f"the gold test split of comparison #{comparison.id}",
    }
    judging = Job.objects.get(parent=job, kind="evaluation_judge")
    shards = list(judging.children.order_by("id"))
    assert [(s.kind, s.status, s.params["start"], s.params["stop"]) for s in shards] == [
        ("evaluation_judge_shard", "succeeded", 0, 2),
        ("evaluation_judge_shard", "succeeded", 2, 3),
    ]
    assert judging.result["shards"] == 2 and judging.result["judge"].startswith("served-judge")
    assert [s.result["judged"] for s in shards] == [4, 2]  # 2 frames × 2 pipelines, then 1 × 2
    # Every caption judged exactly once: one request each, every answer kept.
    assert len(judge_server.requests) == 6
    scores = CaptionScore.objects.filter(pipeline__comparison=comparison)
    assert sorted(set(scores.values_list("asset_id", flat=True))) == sorted(eval_ids)
    assert scores.count() == 6 and set(scores.values_list("judge_status", flat=True)) == {"ok"}
    assert sorted(scores.values_list("judge_scores__scene", flat=True)) == scene_scores
    clip_scores = list(scores.values_list("clip_score", flat=True))
    assert None not in clip_scores and len(set(clip_scores)) > 1  # every caption, the last chunk's too
    comparison.refresh_from_db()
    assert {row["pipeline"]: row["judge_overall_n"] for row in comparison.report["table2"]} == {
        "no detection": 3,
        f"{detector.name} → captioner": 3,
    }

    # A shard retried (its worker died after storing its answers) asks the judge nothing again.
    retried = evaluation_judge_shard(shards[0], JobContext.for_job(shards[0]))
    assert retried == {"judged": 0, "start": 0} and len(judge_server.requests) == 6
