"""The `demo_models` job: train the demo world's models (workers/demo/training.py) and give them
to the demo project as its default model versions. Trained once per world seed and training-code
version, under MODELS_DIR/demo/; a second run finds them and only registers."""

from pathlib import Path
from typing import Any

from django.conf import settings

from apps.jobs.kinds import job_kind
from apps.jobs.models import Job
from apps.jobs.runner import JobContext
from apps.modelhub import services
from apps.modelhub.models import ModelRole


def _seed_param(params: dict[str, Any]) -> dict[str, Any]:
    seed = params.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError("seed must be a non-negative integer (the demo world's seed)")
    return {"seed": seed}


def demo_models_folder(seed: int) -> Path:
    from workers.demo.training import TRAINING_CODE_VERSION

    return Path(settings.MODELS_DIR) / "demo" / f"world-{seed}-v{TRAINING_CODE_VERSION}"


def _gpu_or_cpu() -> str:
    return settings.VLM_QUEUE


@job_kind(name="demo_models", label="Train the demo world's models", queue=_gpu_or_cpu, clean_params=_seed_param)
def demo_models(job: Job, ctx: JobContext) -> dict[str, Any]:
    from workers.demo.training import CaptionerTraining, build_demo_detector_base, is_trained, train_demo_captioner

    seed = job.params["seed"]
    folder = demo_models_folder(seed)
    captioner = CaptionerTraining(world_seed=seed, **settings.DEMO_CAPTIONER_TRAINING)
    reused = is_trained(folder / "captioner", captioner.__dict__)
    ctx.progress(0.0, "Found the trained captioner" if reused else "Drawing the captioner's training world")

    def on_step(done: int, total: int, what: str) -> None:
        ctx.progress(0.95 * done / total, f"Captioner: step {done} of {total}, {what}")

    train_demo_captioner(folder / "captioner", captioner, on_step)
    ctx.progress(0.95, "Building the detector base")
    build_demo_detector_base(folder / "detector")
    ctx.progress(0.97, "Registering the demo models")
    versions = [
        services.demo_model_register(project=job.project, role=role, name=name, folder=folder / subfolder)
        for role, name, subfolder in (
            (ModelRole.CAPTIONER, DEMO_CAPTIONER, "captioner"),
            (ModelRole.DETECTOR, DEMO_DETECTOR, "detector"),
        )
    ]
    return {"folder": str(folder), "reused": reused, "models": [version.name for version in versions]}


DEMO_CAPTIONER = "demo-internvl"
DEMO_DETECTOR = "demo-qwen2.5-vl"
