"""Reads for training pages."""

from django.db.models import QuerySet
from django.http import Http404

from apps.core.inputs import done_before, inputs_key
from apps.labeling.models import LabelingProject, LabelingStatus
from apps.labeling.selectors import gold_label_map
from apps.modelhub.models import ModelRole, ModelVersion
from apps.modelhub.selectors import model_version_as_run
from apps.projects.models import Project
from apps.projects.selectors import roster_as_models_see_it
from apps.training.models import TrainingRun
from workers.train.split import split_gold

TRAIN_FRACTION = 0.8


def training_run_list(*, project: Project) -> QuerySet[TrainingRun]:
    return TrainingRun.objects.filter(project=project).select_related(
        "job", "base_version", "result_version", "labeling_project__gold_set"
    )


def training_run_get(*, project: Project, run_id: int) -> TrainingRun:
    run = training_run_list(project=project).filter(id=run_id).first()
    if run is None:
        raise Http404("No such training run.")
    return run


def trainable_detectors(*, project: Project) -> QuerySet[ModelVersion]:
    """LoRA needs the weights here: transformers detectors that are not adapters themselves."""
    return ModelVersion.objects.filter(project=project, role=ModelRole.DETECTOR, backend="transformers", adapter="")


def labelled_sources(*, project: Project) -> QuerySet[LabelingProject]:
    return LabelingProject.objects.filter(project=project, status=LabelingStatus.READY).select_related("gold_set")


def training_curves(run: TrainingRun) -> dict:
    """What the run page plots: loss per step, validation loss and scores per epoch."""
    steps = list(run.steps.values_list("step", "loss", "epoch"))
    epochs = list(run.epochs.values("epoch", "train_loss", "val_loss", "precision", "recall", "sample_f1", "mistakes"))
    last_step_of_epoch: dict[int, int] = {0: 0}  # epoch 0: the untrained model, before step 1
    for step, _, epoch in steps:
        last_step_of_epoch[epoch] = max(step, last_step_of_epoch.get(epoch, 0))
    return {
        "steps": [s for s, _, _ in steps],
        "loss": [loss for _, loss, _ in steps],
        "epochs": [row["epoch"] for row in epochs],
        # the step each validation came after: the loss chart puts epochs on its step axis
        "epoch_steps": [last_step_of_epoch.get(row["epoch"]) for row in epochs],
        "val_loss": [row["val_loss"] for row in epochs],
        "train_loss": [row["train_loss"] for row in epochs],
        "precision": [row["precision"] for row in epochs],
        "recall": [row["recall"] for row in epochs],
        "sample_f1": [row["sample_f1"] for row in epochs],
        "mistakes": [row["mistakes"] for row in epochs],
        "finished": bool(run.job and run.job.is_finished),
    }


def before_after(run: TrainingRun) -> dict | None:
    """Epoch 0 (the untrained detector) against the last validated epoch, on the stored validation split."""
    rows = list(run.epochs.order_by("epoch"))
    if len(rows) < 2 or rows[0].epoch != 0:
        return None
    first, last = rows[0], rows[-1]
    return {
        "epoch": last.epoch,
        "rows": [
            (label, getattr(first, field), getattr(last, field), higher_is_better)
            for label, field, higher_is_better in (
                ("Sample-F1", "sample_f1", True),
                ("Precision", "precision", True),
                ("Recall", "recall", True),
                ("Mistakes per frame", "mistakes", False),
                ("Validation loss", "val_loss", False),
            )
        ],
    }


def training_split(labels: dict[int, list[str]], seed: int) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The seeded 80/20 split of the frames with a final gold label, as (train, validation)."""
    train_ids, validation_ids = split_gold(sorted(labels), seed=seed, train_fraction=TRAIN_FRACTION)
    return (
        {str(asset_id): labels[asset_id] for asset_id in train_ids},
        {str(asset_id): labels[asset_id] for asset_id in validation_ids},
    )


def training_inputs_key(*, base_version: ModelVersion, params: dict, train: dict, validation: dict, merge: bool) -> str:
    return inputs_key(
        {
            "run": "train_detector",
            "base": model_version_as_run(base_version),
            # the roster's sorted names are the answers it learns
            "roster": roster_as_models_see_it(project=base_version.project),
            "params": params,
            "train": train,
            "validation": validation,
            "merge": merge,
        }
    )


def training_run_done_before(
    *, base_version: ModelVersion, labeling_project: LabelingProject, params: dict, merge: bool
) -> TrainingRun | None:
    """A finished fine-tuning of this base, with these hyperparameters (all of them, as
    `training_run_start` merges them), on the gold labels the labelling project has now."""
    train, validation = training_split(gold_label_map(labeling_project), seed=int(params.get("seed", 0)))
    key = training_inputs_key(base_version=base_version, params=params, train=train, validation=validation, merge=merge)
    run = done_before(TrainingRun.objects.filter(project=base_version.project), key)
    return run if run is not None and run.result_version_id is not None else None
