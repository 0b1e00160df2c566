"""Command-line entry point of detector SFT, for one process or DDP over the GPUs of one machine.

    python -m workers.train.run --config run.json [--events events.jsonl] [--stop-file STOP]
    torchrun --nproc_per_node 4 -m workers.train.run --config run.json ...
    accelerate launch --multi_gpu --num_processes 4 -m workers.train.run --config run.json ...

`run.json` (see `write_run_file`) holds the SFTConfig, the roster, the train and validation
examples and an optional `resume_from`. With WORLD_SIZE > 1 (set by torchrun / accelerate) the
processes join one process group (NCCL on GPUs, gloo on CPUs). Process 0 appends one JSON line per
step and per epoch to `--events`, stops cooperatively once `--stop-file` exists, and writes the
result to `<output_dir>/result.json` (also printed as the last line of its output).
"""

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from workers.train.checkpoint import write_json_atomically
from workers.train.config import EpochMetrics, SFTConfig, SFTResult, StepMetrics, TrainExample, TrainingCallbacks
from workers.vlm.prompts import CharacterCard

RESULT_FILE = "result.json"


def write_run_file(
    path: Path,
    config: SFTConfig,
    roster: Sequence[CharacterCard],
    train_examples: Sequence[TrainExample],
    validation_examples: Sequence[TrainExample] = (),
    resume_from: str | Path | None = None,
) -> None:
    """What the app writes before launching the entry point (no torch needed)."""
    payload = {
        "config": config.as_dict(),
        "roster": [
            {
                "name": card.name,
                "description": card.description,
                "reference_paths": [str(path) for path in card.reference_paths],
                "aliases": list(card.aliases),
            }
            for card in roster
        ],
        "train": [_example_json(example) for example in train_examples],
        "validation": [_example_json(example) for example in validation_examples],
        "resume_from": str(resume_from) if resume_from else None,
    }
    write_json_atomically(Path(path), payload)


def _example_json(example: TrainExample) -> dict:
    return {"key": example.key, "image_path": str(example.image_path), "names": list(example.names)}


def read_run_file(path: Path) -> tuple[SFTConfig, list[CharacterCard], list[TrainExample], list[TrainExample], str]:
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    roster = [
        CharacterCard(
            name=card["name"],
            description=card["description"],
            reference_paths=tuple(Path(p) for p in card.get("reference_paths", [])),
            aliases=tuple(card.get("aliases", [])),
        )
        for card in payload["roster"]
    ]
    examples = {
        part: [TrainExample(row["key"], Path(row["image_path"]), tuple(row["names"])) for row in payload.get(part, [])]
        for part in ("train", "validation")
    }
    config = SFTConfig.from_dict(payload["config"])
    return config, roster, examples["train"], examples["validation"], payload.get("resume_from")


class EventLog:
    """One JSON line per step and per epoch, flushed at once so a watcher sees progress live."""

    def __init__(self, path: Path | None):
        self.path = path

    def write(self, kind: str, payload: dict) -> None:
        if self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as events:
            events.write(json.dumps({"event": kind, **payload}, ensure_ascii=False) + "\n")

    def on_step(self, metrics: StepMetrics) -> None:
        self.write("step", asdict(metrics))

    def on_epoch(self, metrics: EpochMetrics) -> None:
        self.write("epoch", asdict(metrics))


def result_json(result: SFTResult) -> dict:
    return json.loads(json.dumps(asdict(result), default=str))  # paths as strings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.train.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="the run file (see write_run_file)")
    parser.add_argument("--events", type=Path, help="append one JSON line per step and per epoch here")
    parser.add_argument("--stop-file", type=Path, help="stop cooperatively (after a checkpoint) once this exists")
    args = parser.parse_args(argv)

    import torch  # here, not at the top: the app imports write_run_file without torch

    from workers.train.recipe import train_detector

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        torch.distributed.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    try:
        config, roster, train_examples, validation_examples, resume_from = read_run_file(args.config)
        events = EventLog(args.events)
        stop_file = args.stop_file
        callbacks = TrainingCallbacks(
            on_step=events.on_step,
            on_epoch=events.on_epoch,
            should_stop=(lambda: stop_file.exists()) if stop_file else None,
        )
        result = train_detector(config, roster, train_examples, validation_examples, callbacks, resume_from)
        rank = torch.distributed.get_rank() if distributed else 0
        if rank == 0:
            payload = result_json(result)
            write_json_atomically(Path(config.output_dir) / RESULT_FILE, payload)
            events.write("result", payload)
            print(json.dumps(payload), flush=True)
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
