"""LoRA fine-tuning of the Qwen2.5-VL character detector (paper §5), as one flat recipe.

    recipe = DetectorSFTRecipe(config, roster, train_examples, validation_examples, callbacks)
    recipe.setup(resume_from=None)  # a checkpoint folder, or a run's output_dir (its newest checkpoint)
    result = recipe.train()  # validates and checkpoints after every epoch; honours should_stop
    recipe.cleanup()

`train_detector` does the three. The same recipe runs in one process or, under `torchrun` /
`accelerate launch` (see `workers.train.run`), as DDP over the GPUs of one machine: every process
builds the same batch plan and runs its share of each optimizer step; process 0 validates, writes
checkpoints and calls the callbacks.

Exact resume: the batch order of an epoch depends only on (seed, epoch), and a checkpoint holds
the adapter, the optimizer, the scheduler, the counters and every random generator's state, so a
run resumed from any checkpoint continues as if it had never stopped.
"""

import json
import os
import random
import shutil
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from workers.train.checkpoint import (
    ADAPTER,
    CONFIG,
    PARTIAL_PREFIX,
    TRAINING_STATE,
    capture_rng,
    commit_checkpoint,
    partial_checkpoint_dir,
    replace_dir,
    resolve_checkpoint,
    restore_rng,
    write_json_atomically,
)
from workers.train.config import (
    CANCELLED,
    COMPLETED,
    RESUME_MUST_MATCH,
    EpochMetrics,
    SFTConfig,
    SFTResult,
    StepMetrics,
    TrainExample,
    TrainingCallbacks,
)
from workers.train.data import ExampleEncoder, collate, epoch_batches, step_plan
from workers.train.metrics import detection_scores
from workers.train.modeling import AnswerLoss, ImageFeatures, core_model, load_base_model, lora_config, training_dtype
from workers.vlm.backends import ModelSpec, TransformersBackend
from workers.vlm.parsing import parse_detection
from workers.vlm.prompts import CharacterCard, detection_prompt

STATE_FORMAT = 1
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


def _distributed():
    """torch.distributed when this process is one of several, else None."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed
    return None


class DetectorSFTRecipe:
    def __init__(
        self,
        config: SFTConfig,
        roster: Sequence[CharacterCard],
        train_examples: Sequence[TrainExample],
        validation_examples: Sequence[TrainExample] = (),
        callbacks: TrainingCallbacks | None = None,
    ):
        if not train_examples:
            raise ValueError("No training examples.")
        self.config = config
        self.roster = list(roster)
        self.train_examples = list(train_examples)
        self.validation_examples = list(validation_examples)
        self.callbacks = callbacks or TrainingCallbacks()
        self.output_dir = Path(config.output_dir)
        dist = _distributed()
        self.rank, self.world_size = (dist.get_rank(), dist.get_world_size()) if dist else (0, 1)

    # --- setup -------------------------------------------------------------------------------------------------

    def setup(self, resume_from: str | Path | None = None, model=None, processor=None) -> None:
        """Load the model (or take an already loaded one: benchmarks build random real-size models),
        add LoRA, encode the examples, build the optimizer; restore everything from a checkpoint."""
        from peft import PeftModel, get_peft_model
        from transformers import get_scheduler

        config = self.config
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)  # the LoRA initialisation
        self.device = self._device()
        if model is None:
            model, processor = load_base_model(config, training_dtype(config, self.device))
        checkpoint = resolve_checkpoint(Path(resume_from)) if resume_from else None
        if checkpoint is not None:
            self._check_resumable(checkpoint)
            model = PeftModel.from_pretrained(model, checkpoint / ADAPTER, is_trainable=True)
        else:
            model = get_peft_model(model, lora_config(config))
        torch.manual_seed(config.seed + self.rank)  # each process its own dropout masks; the LoRA init is shared
        self.model = model.to(self.device).train()
        self.processor = processor

        encoder = ExampleEncoder(
            processor,
            core_model(model).model.get_rope_index,
            self.roster,
            config.max_references,
            config.reference_max_pixels,
            config.target_max_pixels,
        )
        self.train_set = [encoder.encode(example) for example in self.train_examples]
        self.validation_set = [encoder.encode(example) for example in self.validation_examples]
        self.pad_id = processor.tokenizer.pad_token_id
        references = {image for example in self.train_set + self.validation_set for image in example.images[:-1]}
        features = ImageFeatures(
            model,
            processor.image_processor,
            self.device,
            trainable=config.train_vision,
            cache=config.cache_vision_features,
            references=references,
        )
        self.loss = AnswerLoss(model, features)
        self.trained_loss = self.loss
        if self.world_size > 1:
            self.trained_loss = torch.nn.parallel.DistributedDataParallel(
                self.loss,
                device_ids=[self.device] if self.device.type == "cuda" else None,
                forward_sync_buffers=False,  # the buffers are constants (rotary frequencies)
            )

        trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.micro_batches_per_step = config.grad_accumulation * self.world_size
        self.steps_per_epoch = len(self._plan(epoch=0))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.scheduler = get_scheduler(
            SCHEDULES[config.lr_schedule],
            self.optimizer,
            num_warmup_steps=round(config.warmup_ratio * self.total_steps),
            num_training_steps=self.total_steps,
        )

        self.epochs_done = self.step_in_epoch = self.global_step = 0
        self.epoch_loss_sum, self.epoch_loss_tokens = 0.0, 0
        self.history: list[EpochMetrics] = []
        self.checkpoint_dir: Path | None = None
        self.gradient_checkpointing = False
        self.share_prefix = config.share_prefix
        if config.gradient_checkpointing:
            self._enable_gradient_checkpointing()
        if checkpoint is not None:
            self._restore(checkpoint)  # last: the random generators continue from the checkpoint

    def _device(self) -> torch.device:
        if not torch.cuda.is_available():
            return torch.device("cpu")
        if self.world_size > 1:
            local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
            torch.cuda.set_device(local_rank)
            return torch.device("cuda", local_rank)
        return torch.device("cuda")

    def _check_resumable(self, checkpoint: Path) -> None:
        saved = json.loads((checkpoint / CONFIG).read_text(encoding="utf-8"))
        current = self.config.as_dict()
        differing = [name for name in RESUME_MUST_MATCH if _comparable(saved.get(name)) != _comparable(current[name])]
        if differing:
            raise ValueError(f"Cannot resume from {checkpoint}: the run's {', '.join(differing)} differ.")

    def _restore(self, checkpoint: Path) -> None:
        state = torch.load(checkpoint / TRAINING_STATE, map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epochs_done, self.step_in_epoch = state["epochs_done"], state["step_in_epoch"]
        self.global_step = state["global_step"]
        self.epoch_loss_sum, self.epoch_loss_tokens = state["epoch_loss_sum"], state["epoch_loss_tokens"]
        self.history = [EpochMetrics(**row) for row in state["history"]]
        self.checkpoint_dir = checkpoint
        if state["gradient_checkpointing"] and not self.gradient_checkpointing:
            self._enable_gradient_checkpointing()
        rng_file = checkpoint / f"rng-rank{self.rank}.pt"
        restore_rng(torch.load(rng_file if rng_file.exists() else checkpoint / "rng-rank0.pt", weights_only=True))

    def _enable_gradient_checkpointing(self) -> None:
        core_model(self.model).activation_checkpointing_enable({"use_reentrant": False})
        self.gradient_checkpointing = True
        self.share_prefix = False  # checkpointed layers cannot keep a KV cache

    # --- training ----------------------------------------------------------------------------------------------

    def train(self) -> SFTResult:
        started = time.perf_counter()
        if not self.history and self.global_step == 0 and self.config.eval_before_training:
            self._record_epoch(self._validate(epoch=0, train_loss=None, seconds=0.0))
        for epoch in range(self.epochs_done, self.config.epochs):
            epoch_started = time.perf_counter()
            plan = self._plan(epoch)
            for micro_batches in plan[self.step_in_epoch :]:
                if self._stop_requested():
                    return self._cancelled(started)
                self._step(micro_batches)
            if self._stop_requested():  # before a validation that may take a while
                return self._cancelled(started)
            train_loss = self.epoch_loss_sum / max(self.epoch_loss_tokens, 1)
            metrics = self._validate(epoch + 1, train_loss, time.perf_counter() - epoch_started)
            self.epochs_done, self.step_in_epoch = epoch + 1, 0
            self.epoch_loss_sum, self.epoch_loss_tokens = 0.0, 0
            self.history.append(metrics)
            self.save_checkpoint()  # before telling the caller, so a recorded epoch always has its checkpoint
            self._emit_epoch(metrics)
        return self._result(COMPLETED, self.save_adapter(), started)

    def _plan(self, epoch: int) -> list[list[list[int]]]:
        batches = epoch_batches(self.train_set, self.config.batch_size, self.config.seed, epoch)
        return step_plan(batches, self.micro_batches_per_step)

    def _step(self, micro_batches: list[list[int]]) -> None:
        started = time.perf_counter()
        tokens = sum(self.train_set[index].answer_tokens for batch in micro_batches for index in batch)
        learning_rate = self.scheduler.get_last_lr()[0]
        loss_sum = self._forward_backward(micro_batches, tokens)
        torch.nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"], self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.global_step += 1
        self.step_in_epoch += 1
        self.epoch_loss_sum += loss_sum
        self.epoch_loss_tokens += tokens
        if self.rank == 0 and self.callbacks.on_step:
            seconds = time.perf_counter() - started
            self.callbacks.on_step(
                StepMetrics(
                    self.global_step, self.total_steps, self.epochs_done + 1, loss_sum / tokens, learning_rate, seconds
                )
            )

    def _forward_backward(self, micro_batches: list[list[int]], tokens: int) -> float:
        """Summed answer-token loss of this step over all processes; gradients of the token mean."""
        try:
            return self._accumulate(micro_batches, tokens)
        except torch.cuda.OutOfMemoryError:
            automatic = self.config.gradient_checkpointing is None and self.world_size == 1
            if not automatic or self.gradient_checkpointing:
                raise
        # Only after an out-of-memory error, outside the except block so that the failed attempt's
        # tensors are freed: retry the whole step with gradient checkpointing, for the rest of the run.
        self.optimizer.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        self._enable_gradient_checkpointing()
        return self._accumulate(micro_batches, tokens)

    def _accumulate(self, micro_batches: list[list[int]], tokens: int) -> float:
        mine = micro_batches[self.rank :: self.world_size]
        loss_sum = torch.zeros((), device=self.device)
        for position, indices in enumerate(mine):
            batch = collate([self.train_set[index] for index in indices], self.pad_id, self.share_prefix)
            last = position == len(mine) - 1
            # DDP averages gradients over processes: scaling by world_size makes them the global token mean.
            with nullcontext() if last or self.world_size == 1 else self.trained_loss.no_sync():
                loss = self.trained_loss(batch.to(self.device))
                (loss * self.world_size / tokens).backward()
            loss_sum += loss.detach()
        dist = _distributed()
        if dist:
            dist.all_reduce(loss_sum)
        return float(loss_sum)

    def _stop_requested(self) -> bool:
        stop = self.rank == 0 and self.callbacks.should_stop is not None and bool(self.callbacks.should_stop())
        dist = _distributed()
        if dist:
            flag = torch.tensor(int(stop), device=self.device)
            dist.broadcast(flag, src=0)
            stop = bool(flag)
        return stop

    def _cancelled(self, started: float) -> SFTResult:
        self.save_checkpoint()
        return self._result(CANCELLED, None, started)

    def _result(self, status: str, adapter_dir: Path | None, started: float) -> SFTResult:
        return SFTResult(
            status=status,
            adapter_dir=adapter_dir,
            checkpoint_dir=self.checkpoint_dir,
            steps_done=self.global_step,
            total_steps=self.total_steps,
            epochs_completed=self.epochs_done,
            history=tuple(self.history),
            seconds=time.perf_counter() - started,
        )

    # --- validation --------------------------------------------------------------------------------------------

    def _validate(self, epoch: int, train_loss: float | None, seconds: float) -> EpochMetrics:
        """Process 0 scores the validation frames; every process gets the same row."""
        metrics = [None]
        if self.rank == 0:
            validation_started = time.perf_counter()
            scores = self.evaluate(epoch, train_loss)
            metrics[0] = replace(scores, seconds=seconds + time.perf_counter() - validation_started)
        dist = _distributed()
        if dist:
            dist.broadcast_object_list(metrics, src=0)
        return metrics[0]

    def evaluate(self, epoch: int = 0, train_loss: float | None = None) -> EpochMetrics:
        """Validation loss, and the detector's real answers (greedy, parsed) scored against the gold."""
        if not self.validation_examples:
            return EpochMetrics(epoch, train_loss, None, None, None, None, None)
        self.model.eval()
        loss_sum, tokens = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(self.validation_set), self.config.eval_batch_size):
                examples = self.validation_set[start : start + self.config.eval_batch_size]
                batch = collate(examples, self.pad_id, self.share_prefix)
                loss_sum += float(self.loss(batch.to(self.device)))
                tokens += batch.answer_tokens
        answers = self._generate([example.image_path for example in self.validation_examples])
        self.model.train()
        roster = {card.name: list(card.aliases) for card in self.roster}
        predictions: dict[str, list[str]] = {}
        failures = 0
        for example, answer in zip(self.validation_examples, answers, strict=True):
            parsed = parse_detection(answer, roster)
            failures += not parsed.ok
            predictions[example.key] = parsed.names + parsed.unknown  # unknown names are false positives
        scores = detection_scores(list(predictions.values()), [example.names for example in self.validation_examples])
        return EpochMetrics(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=loss_sum / max(tokens, 1),
            precision=scores.precision,
            recall=scores.recall,
            sample_f1=scores.sample_f1,
            mistakes=scores.mistakes,
            predictions=predictions,
            parse_failures=failures,
        )

    def _generate(self, frames: list[Path]) -> list[str]:
        """Through the detector's own backend (shared-prefix greedy decoding): the scores are the product's."""
        spec = ModelSpec(
            name="sft-validation",
            model=self.config.base_model,
            max_new_tokens=self.config.max_new_tokens,
            batch_size=self.config.eval_batch_size,
            reference_max_pixels=self.config.reference_max_pixels,
            target_max_pixels=self.config.target_max_pixels,
            constrained=self.config.constrained,
        )
        backend = TransformersBackend.from_loaded(spec, self.model, self.processor)
        prompts = [detection_prompt(self.roster, frame, self.config.max_references) for frame in frames]
        return [output.text for output in backend.generate(prompts)]

    def _record_epoch(self, metrics: EpochMetrics) -> None:
        self.history.append(metrics)
        self._emit_epoch(metrics)

    def _emit_epoch(self, metrics: EpochMetrics) -> None:
        if self.rank == 0 and self.callbacks.on_epoch:
            self.callbacks.on_epoch(metrics)

    # --- saving ------------------------------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Adapter, optimizer, scheduler, counters, history, config and every process's random state."""
        dist = _distributed()
        partial = partial_checkpoint_dir(self.output_dir, self.global_step)
        if self.rank == 0:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        if dist:
            dist.barrier()
        torch.save(capture_rng(), partial / f"rng-rank{self.rank}.pt")
        if dist:
            dist.barrier()
        final = [None]
        if self.rank == 0:
            self.model.save_pretrained(partial / ADAPTER)
            state = {
                "format": STATE_FORMAT,
                "epochs_done": self.epochs_done,
                "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step,
                "epoch_loss_sum": self.epoch_loss_sum,
                "epoch_loss_tokens": self.epoch_loss_tokens,
                "gradient_checkpointing": self.gradient_checkpointing,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "history": [asdict(row) for row in self.history],
            }
            torch.save(state, partial / TRAINING_STATE)
            write_json_atomically(partial / CONFIG, self.config.as_dict())
            final[0] = commit_checkpoint(self.output_dir, partial, self.global_step)
        if dist:
            dist.broadcast_object_list(final, src=0)
        self.checkpoint_dir = final[0]
        return self.checkpoint_dir

    def save_adapter(self) -> Path:
        """The final adapter, in a folder `PeftModel.from_pretrained` (and `ModelSpec.adapter`) loads."""
        final = self.output_dir / ADAPTER
        if self.rank == 0:
            partial = self.output_dir / f"{PARTIAL_PREFIX}{ADAPTER}"
            shutil.rmtree(partial, ignore_errors=True)
            self.model.save_pretrained(partial)
            replace_dir(partial, final)
        dist = _distributed()
        if dist:
            dist.barrier()
        return final

    def cleanup(self) -> None:
        for name in ("trained_loss", "loss", "model", "optimizer", "scheduler", "train_set", "validation_set"):
            self.__dict__.pop(name, None)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _comparable(value):
    """JSON turns tuples into lists: compare them as equals."""
    return list(value) if isinstance(value, tuple | list) else value


def train_detector(
    config: SFTConfig,
    roster: Sequence[CharacterCard],
    train_examples: Sequence[TrainExample],
    validation_examples: Sequence[TrainExample] = (),
    callbacks: TrainingCallbacks | None = None,
    resume_from: str | Path | None = None,
) -> SFTResult:
    recipe = DetectorSFTRecipe(config, roster, train_examples, validation_examples, callbacks)
    try:
        recipe.setup(resume_from=resume_from)
        return recipe.train()
    finally:
        recipe.cleanup()
