"""Writes for detector fine-tuning: launch a run, record its metrics, register its adapter."""

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.jobs.services import job_start_for
from apps.labeling.models import LabelingProject
from apps.labeling.selectors import gold_label_map
from apps.modelhub.models import ModelRole, ModelSource, ModelVersion
from apps.training.models import TrainingEpoch, TrainingRun, TrainingStep
from apps.training.selectors import training_inputs_key, training_split
from workers.train.config import SFTConfig

# The paper's recipe (§5): LoRA, 80/20 split, 5 epochs, learning rate 1e-4.
PAPER_DEFAULTS: dict[str, Any] = {
    "epochs": 5,
    "learning_rate": 1e-4,
    "rank": 16,
    "alpha": 32,
    "dropout": 0.05,
    "batch_size": 4,
    "grad_accumulation": 1,
    "train_vision": False,
}
# The tiny profile's random toy model needs a stronger push to learn anything in minutes on a CPU
# (same code path; see TINY_MODELS.md): a higher rate and more epochs.
TINY_DEFAULTS: dict[str, Any] = {**PAPER_DEFAULTS, "epochs": 12, "learning_rate": 1e-3, "batch_size": 8}
MIN_TRAIN_FRAMES = 4
EDITABLE = tuple(PAPER_DEFAULTS) + ("seed", "weight_decay", "warmup_ratio", "max_references")


def sft_defaults(base_version: ModelVersion) -> dict[str, Any]:
    """The paper's recipe (the tiny profile's for tiny models), with what the base version's own
    `sft_recipe` setting recommends on top (e.g. the demo's learnable toy)."""
    defaults = TINY_DEFAULTS if base_version.model.startswith("tiny/") else PAPER_DEFAULTS
    recipe = base_version.settings.get("sft_recipe") if isinstance(base_version.settings, dict) else None
    return {**defaults, **{key: value for key, value in (recipe or {}).items() if key in EDITABLE}}


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(EDITABLE))
    if unknown:
        raise ApplicationError(f"Unknown hyperparameters: {', '.join(unknown)}")
    try:  # the library's own validation, without loading anything
        SFTConfig(base_model="check", output_dir="check", **params)
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"Bad hyperparameters: {exc}") from exc
    return params


@transaction.atomic
def training_run_start(
    *,
    base_version: ModelVersion,
    labeling_project: LabelingProject,
    created_by: User | None,
    params: dict[str, Any] | None = None,
    merge: bool = False,
    enqueue: bool = True,
) -> TrainingRun:
    """Freeze the split (seeded 80/20 of the frames with a final gold label) and queue the job."""
    project = base_version.project
    if base_version.role != ModelRole.DETECTOR:
        raise ApplicationError(f"{base_version} is not a detector.")
    if base_version.backend != "transformers" or base_version.adapter:
        raise ApplicationError(
            f"{base_version} cannot be fine-tuned here: LoRA needs a transformers base model without an adapter."
        )
    if labeling_project.project_id != project.id:
        raise ApplicationError("That labelling project belongs to another project.")
    merged = {**sft_defaults(base_version), **(params or {})}
    merged = _check_params(merged)
    labels = gold_label_map(labeling_project)
    if len(labels) < MIN_TRAIN_FRAMES + 1:
        raise ApplicationError(
            f"Only {len(labels)} gold frames have a final label; label (or resolve) at least {MIN_TRAIN_FRAMES + 1}."
        )
    seed = int(merged.get("seed", 0))
    train, validation = training_split(labels, seed=seed)
    run = TrainingRun.objects.create(
        project=project,
        base_version=base_version,
        labeling_project=labeling_project,
        gold_set_version=labeling_project.gold_set.version,
        params=merged,
        seed=seed,
        train_labels=train,
        validation_labels=validation,
        merge=merge,
        inputs_key=training_inputs_key(
            base_version=base_version, params=merged, train=train, validation=validation, merge=merge
        ),
        created_by=created_by,
    )
    # The row's id and a token of its own: ids start again with a new database over the same var/,
    # and a new run must never resume from (or overwrite) the checkpoints of an old one.
    folder = f"run-{run.id}-{secrets.token_hex(4)}"
    run.output_dir = str(settings.MODELS_DIR / "adapters" / f"project-{project.id}" / folder)
    job_start_for(run, kind="train_detector", created_by=created_by, enqueue=enqueue, also_save=("output_dir",))
    return run


def training_step_record(*, run: TrainingRun, step: int, epoch: int, loss: float, learning_rate: float, seconds: float):
    # A resumed run repeats no step, but a retried attempt may: the latest value wins.
    TrainingStep.objects.update_or_create(
        run=run, step=step, defaults={"epoch": epoch, "loss": loss, "learning_rate": learning_rate, "seconds": seconds}
    )


def training_epoch_record(*, run: TrainingRun, metrics) -> TrainingEpoch:
    epoch, _ = TrainingEpoch.objects.update_or_create(
        run=run,
        epoch=metrics.epoch,
        defaults={
            "train_loss": metrics.train_loss,
            "val_loss": metrics.val_loss,
            "precision": metrics.precision,
            "recall": metrics.recall,
            "sample_f1": metrics.sample_f1,
            "mistakes": metrics.mistakes,
            "parse_failures": metrics.parse_failures,
            "predictions": metrics.predictions,
            "seconds": metrics.seconds,
        },
    )
    return epoch


@transaction.atomic
def training_result_register(*, run: TrainingRun, adapter_dir: str) -> ModelVersion:
    """The adapter as a new detector version of the project (selectable for detection and captions)."""
    base = run.base_version
    version, _ = ModelVersion.objects.update_or_create(
        project=run.project,
        role=ModelRole.DETECTOR,
        name=f"{base.name}+sft-run{run.id}",
        defaults={
            "source": ModelSource.SFT,
            "backend": base.backend,
            "model": base.model,
            "adapter": adapter_dir,
            "settings": dict(base.settings),
        },
    )
    run.result_version = version
    run.save(update_fields=["result_version", "updated_at"])
    return version


@transaction.atomic
def training_merged_register(*, run: TrainingRun, merged_dir: str, check: dict) -> ModelVersion | None:
    run.merge_check = check
    if not check.get("equivalent"):
        run.save(update_fields=["merge_check", "updated_at"])
        return None
    version, _ = ModelVersion.objects.update_or_create(
        project=run.project,
        role=ModelRole.DETECTOR,
        name=f"{run.base_version.name}+sft-run{run.id}-merged",
        defaults={"source": ModelSource.SFT, "backend": "transformers", "model": merged_dir, "adapter": ""},
    )
    run.merged_version = version
    run.save(update_fields=["merge_check", "merged_version", "updated_at"])
    return version
