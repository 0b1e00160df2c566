"""An evaluation on real workers: a CPU worker runs the evaluation itself (and CLIPScore), a GPU-queue
worker configured as in production (one task per pool child) runs the model stages — each stage in
a process of its own, the evaluation in none of them."""

import re

import pytest
from django.conf import settings

from apps.evaluation.services import comparison_start, eval_set_create
from apps.jobs.models import Job, JobStatus
from apps.modelhub.models import ModelVersion
from tests.apps.evaluation.test_evaluation import _extra_frames
from tests.apps.training.world import labelled_project
from tests.integration.test_worker_kill import _wait_for
from workers.vision.tiny import build_tiny_clip
from workers.vlm.tiny import build_tiny_internvl, build_tiny_qwen2_5_vl

pytestmark = pytest.mark.integration


def _pid(job: Job) -> int:
    match = re.search(r"\(pid (\d+)\)", job.worker)
    assert match, f"job #{job.id} does not say which process ran it: {job.worker!r}"
    return int(match.group(1))


def test_each_model_stage_of_an_evaluation_runs_in_its_own_worker_process(clean_queue, workers, tmp_path):
    models_dir = tmp_path / "models"  # built once here, not by two workers at once
    build_tiny_qwen2_5_vl(models_dir / "tiny" / "qwen2_5_vl")
    build_tiny_internvl(models_dir / "tiny" / "internvl")
    build_tiny_clip(models_dir / "tiny" / "clip")
    settings.MODELS_DIR = models_dir
    project, _, detector, _ = labelled_project(frames=4)
    _extra_frames(project, 2)
    eval_set = eval_set_create(project=project, size=2, seed=0, created_by=None)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    comparison = comparison_start(eval_set=eval_set, captioner=captioner, detectors=[detector], created_by=None)

    env = {"MODELS_DIR": str(models_dir), "MODEL_PROFILE": "tiny"}
    _, cpu_log = workers("cpu-worker", queue="cpu", extra_env=env)
    _, gpu_log = workers("gpu-worker", queue=settings.VLM_QUEUE, extra_env=env, max_tasks_per_child=1)
    parent = _wait_for(comparison.job_id, lambda j: j.is_finished, 300, gpu_log)
    assert parent.status == JobStatus.SUCCEEDED, f"{parent.error}\n{cpu_log.read_text()[-3000:]}"

    stages = list(parent.children.order_by("id"))
    model_stages = [s for s in stages if s.queue == settings.VLM_QUEUE]
    # each pipeline captions the eval set and the gold test split
    assert sorted(s.kind for s in model_stages) == ["caption"] * 4 + ["detect", "detect"]
    assert all(s.status == JobStatus.SUCCEEDED for s in stages)
    # One process per model stage (its memory goes with it), none shared with the evaluation.
    pids = [_pid(s) for s in model_stages]
    assert len(set(pids)) == len(model_stages) and _pid(parent) not in pids
    comparison.refresh_from_db()
    assert len(comparison.report["table2"]) == 2
