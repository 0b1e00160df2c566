"""The fine-tuning job: gold labels → LoRA SFT (workers.train) → a new detector version.

Runs where the VLM runs (the gpu queue). A retried job (the worker was killed) resumes from the
run's newest checkpoint; a lead's cancel is honoured before the next optimizer step, after a
checkpoint is saved. Model libraries are imported inside: the web process loads this module too.
"""

import time
from pathlib import Path
from typing import Any

from apps.captioning.handlers import character_cards, roster_with_references
from apps.core.files import local_paths
from apps.jobs import services as job_services
from apps.jobs.kinds import VLM_QUEUE, id_params, job_kind
from apps.jobs.models import Job
from apps.jobs.runner import JobCancelled, JobContext
from apps.media.models import Asset
from apps.modelhub.specs import model_spec_for
from apps.training import services
from apps.training.models import TrainingRun


class _Reporter:
    """The recipe's callbacks: metrics rows, the job's progress bar with an ETA, and the cancel flag."""

    def __init__(self, run: TrainingRun, ctx: JobContext):
        self.run, self.ctx = run, ctx
        self.started = time.monotonic()
        self.first_step: int | None = None
        self.cancel_requested = False

    def on_step(self, metrics) -> None:
        services.training_step_record(
            run=self.run,
            step=metrics.step,
            epoch=metrics.epoch,
            loss=metrics.loss,
            learning_rate=metrics.learning_rate,
            seconds=metrics.seconds,
        )
        if self.first_step is None:  # a resumed run: the ETA counts this attempt's pace only
            self.first_step, self.started = metrics.step - 1, time.monotonic() - metrics.seconds
        done_here = metrics.step - self.first_step
        per_step = (time.monotonic() - self.started) / max(done_here, 1)
        eta = per_step * (metrics.total_steps - metrics.step)
        message = (
            f"epoch {metrics.epoch}, step {metrics.step}/{metrics.total_steps}, "
            f"loss {metrics.loss:.4f}, ETA {_duration(eta)}"
        )
        # Reported without raising: the recipe stops itself at `should_stop`, after a checkpoint.
        self.cancel_requested = job_services.job_report_progress(
            job_id=self.ctx.job_id,
            progress=0.02 + 0.93 * metrics.step / max(metrics.total_steps, 1),
            message=message,
            attempt=self.ctx.attempt,
        )

    def on_epoch(self, metrics) -> None:
        services.training_epoch_record(run=self.run, metrics=metrics)
        if metrics.sample_f1 is not None:
            self.ctx.log(
                f"epoch {metrics.epoch}: validation sample-F1 {metrics.sample_f1:.3f}, precision "
                f"{metrics.precision:.3f}, recall {metrics.recall:.3f}, mistakes/frame {metrics.mistakes:.2f}"
            )

    def should_stop(self) -> bool:
        return self.cancel_requested or job_services.job_heartbeat(job_id=self.ctx.job_id, attempt=self.ctx.attempt)


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def _examples(labels: dict[str, list[str]], paths: dict[int, Path]):
    from workers.train.config import TrainExample

    return [TrainExample(key=key, image_path=paths[int(key)], names=tuple(names)) for key, names in labels.items()]


@job_kind(
    name="train_detector",
    label="Fine-tune the detector (LoRA)",
    queue=VLM_QUEUE,
    clean_params=id_params("training_run_id"),
    produces=("the fine-tuning run", "training:detail", "training_run_id"),
)
def train_detector(job: Job, ctx: JobContext) -> dict[str, Any]:
    from workers.train.checkpoint import LATEST, checkpoints_root
    from workers.train.config import CANCELLED, SFTConfig, TrainingCallbacks
    from workers.train.recipe import train_detector as run_recipe

    run = TrainingRun.objects.select_related("base_version", "project").get(
        id=job.params["training_run_id"], project=job.project
    )
    spec = model_spec_for(run.base_version)  # builds the tiny model on first use, like detection
    config = SFTConfig(
        base_model=spec.model,
        output_dir=run.output_dir,
        reference_max_pixels=spec.reference_max_pixels,
        target_max_pixels=spec.target_max_pixels,
        max_new_tokens=spec.max_new_tokens,
        constrained=spec.constrained,  # validation answers decoded as the detection runs decode them
        **run.params,
    )
    # A retried job (its worker was killed) continues from the newest complete checkpoint.
    resume_from = run.output_dir if (checkpoints_root(Path(run.output_dir)) / LATEST).exists() else None
    if resume_from:
        ctx.log(f"Resuming from checkpoint {(checkpoints_root(Path(run.output_dir)) / LATEST).read_text().strip()}")
    ctx.log(
        f"{len(run.train_labels)} training and {len(run.validation_labels)} validation frames, "
        f"{config.epochs} epochs, learning rate {config.learning_rate}"
    )
    ctx.progress(0.01, f"Loading {spec.version}")
    reporter = _Reporter(run, ctx)
    callbacks = TrainingCallbacks(
        on_step=reporter.on_step, on_epoch=reporter.on_epoch, should_stop=reporter.should_stop
    )
    characters, references = roster_with_references(run.project)
    frame_ids = [int(key) for key in (*run.train_labels, *run.validation_labels)]
    assets = {asset.id: asset for asset in Asset.objects.filter(project=run.project, id__in=frame_ids)}
    with (
        local_paths([ref.image for ref in references]) as reference_paths,
        local_paths([assets[asset_id].image for asset_id in frame_ids]) as frame_paths,
    ):
        cards = list(character_cards(characters, references, reference_paths).values())
        paths = dict(zip(frame_ids, frame_paths, strict=True))
        result = run_recipe(
            config,
            cards,
            _examples(run.train_labels, paths),
            _examples(run.validation_labels, paths),
            callbacks=callbacks,
            resume_from=resume_from,
        )
        # An epoch validated just before a worker died may have missed its callback; the
        # checkpointed history has every epoch.
        for metrics in result.history:
            services.training_epoch_record(run=run, metrics=metrics)
        outcome: dict[str, Any] = {
            "status": result.status,
            "steps": result.steps_done,
            "epochs": result.epochs_completed,
            "checkpoint": str(result.checkpoint_dir),
        }
        if result.status == CANCELLED:
            ctx.log(f"Cancelled after step {result.steps_done}; checkpoint kept at {result.checkpoint_dir}")
            raise JobCancelled()
        version = services.training_result_register(run=run, adapter_dir=str(result.adapter_dir))
        outcome["detector_version"] = version.name
        ctx.log(f"Registered detector version {version.name}")
        if run.merge:
            outcome["merge"] = _merge(run, spec, cards, paths, result.adapter_dir, ctx)
    history = {row.epoch: row for row in result.history}
    first, last = history.get(0), history.get(result.epochs_completed)
    if first and last:
        outcome["before_after"] = {
            "sample_f1": [first.sample_f1, last.sample_f1],
            "precision": [first.precision, last.precision],
            "recall": [first.recall, last.recall],
            "mistakes": [first.mistakes, last.mistakes],
        }
    return outcome


def _merge(run: TrainingRun, spec, cards, paths, adapter_dir, ctx: JobContext) -> dict[str, Any]:
    from workers.train.merge import merge_and_check

    ctx.progress(0.96, "Merging the adapter and checking the merged model answers the same")
    check = merge_and_check(
        spec.model,
        adapter_dir,
        Path(run.output_dir) / "merged",
        cards,
        _examples(run.validation_labels, paths),
        spec=spec,
    )
    summary = {"equivalent": check.identical, "frames": len(check.adapter_answers), "differing": check.differing_keys}
    version = services.training_merged_register(run=run, merged_dir=str(check.merged_dir), check=summary)
    ctx.log(f"Merged model {'registered as ' + version.name if version else 'NOT registered: answers differ'}")
    return summary
