"""The `demo_models` job: train the demo world's models (workers/demo/training.py, clip.py) and give
them to the demo project: the captioner and detector base as its default model versions, the CLIP as
its embedding model. Trained once per world seed and training-code version, under MODELS_DIR/demo/;
a second run finds them and only registers."""

import hashlib
import json
from pathlib import Path
from typing import Any

from django.conf import settings

from apps.jobs.kinds import VLM_QUEUE, job_kind
from apps.jobs.models import Job
from apps.jobs.runner import JobContext
from apps.modelhub import services
from apps.modelhub.models import ModelRole
from apps.projects.services import project_update


def _seed_param(params: dict[str, Any]) -> dict[str, Any]:
    seed = params.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError("seed must be a non-negative integer (the demo world's seed)")
    return {"seed": seed}


def demo_models_folder(seed: int) -> Path:
    from workers.demo.training import TRAINING_CODE_VERSION

    return Path(settings.MODELS_DIR) / "demo" / f"world-{seed}-v{TRAINING_CODE_VERSION}"


def _trained_folder(folder: Path, name: str, how) -> Path:
    """Each model's folder is named by its settings too: the embedding jobs key their vectors by
    the CLIP's folder, and a run's inputs key (apps/core/inputs.py) holds a model version's folder,
    so a model trained another way must not land in the same one."""
    from dataclasses import asdict

    tag = hashlib.sha1(json.dumps(asdict(how), sort_keys=True).encode()).hexdigest()[:8]
    return folder / f"{name}-{tag}"


@job_kind(name="demo_models", label="Train the demo world's models", queue=VLM_QUEUE, clean_params=_seed_param)
def demo_models(job: Job, ctx: JobContext) -> dict[str, Any]:
    from dataclasses import asdict

    from workers.demo.clip import ClipTraining, train_demo_clip
    from workers.demo.training import (
        CaptionerTraining,
        DetectorTraining,
        is_trained,
        train_demo_captioner,
        train_demo_detector_base,
    )

    seed = job.params["seed"]
    folder = demo_models_folder(seed)
    clip = ClipTraining(world_seed=seed, **settings.DEMO_CLIP_TRAINING)
    captioner = CaptionerTraining(world_seed=seed, **settings.DEMO_CAPTIONER_TRAINING)
    detector = DetectorTraining(world_seed=seed, **settings.DEMO_DETECTOR_TRAINING)
    trained = {
        name: (_trained_folder(folder, name, how), how)
        for name, how in (("clip", clip), ("captioner", captioner), ("detector", detector))
    }
    reused = all(is_trained(where, asdict(how)) for where, how in trained.values())

    # Shares of the job's progress bar, roughly each model's share of the training time.
    def stage(low: float, high: float, model: str):
        def on_step(done: int, total: int, what: str) -> None:
            ctx.progress(low + (high - low) * done / total, f"{model}: step {done} of {total}, {what}")

        return on_step

    ctx.progress(0.0, "Found the trained models" if reused else "Training the CLIP on the demo world")
    clip_spec = train_demo_clip(trained["clip"][0], clip, stage(0.0, 0.05, "CLIP"))
    train_demo_captioner(trained["captioner"][0], captioner, stage(0.05, 0.7, "Captioner"))
    train_demo_detector_base(trained["detector"][0], detector, stage(0.7, 0.97, "Detector base"))
    ctx.progress(0.97, "Registering the demo models")
    versions = [
        services.demo_model_register(project=job.project, role=role, name=name, folder=trained[model][0])
        for role, name, model in (
            (ModelRole.CAPTIONER, DEMO_CAPTIONER, "captioner"),
            (ModelRole.DETECTOR, DEMO_DETECTOR, "detector"),
        )
    ]
    # Embedding runs and CLIPScore use the project's CLIP from here on; earlier vectors keep theirs.
    project_update(project=job.project, clip_model_name=clip_spec.model_name, clip_pretrained="")
    return {
        "folder": str(folder),
        "reused": reused,
        "models": [version.name for version in versions],
        "clip": clip_spec.model_name,
    }


DEMO_CAPTIONER = "demo-internvl"
DEMO_DETECTOR = "demo-qwen2.5-vl"
