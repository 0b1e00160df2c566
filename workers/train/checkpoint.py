"""Checkpoints that a crash at any moment cannot corrupt.

Layout of a run's output_dir:
    checkpoints/step-0000040/   adapter/ (PEFT), training_state.pt, rng-rank<N>.pt, config.json
    checkpoints/LATEST          the name of the newest complete checkpoint
    adapter/                    the final adapter of a completed run

A checkpoint is written into a hidden `.partial-…` folder and renamed into place only when it is
complete (a rename is atomic within one filesystem); LATEST is then replaced atomically, and only
after that are older checkpoints removed. Whenever the process dies, LATEST names a complete one.
"""

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

CHECKPOINTS = "checkpoints"
LATEST = "LATEST"
ADAPTER = "adapter"
TRAINING_STATE = "training_state.pt"
CONFIG = "config.json"
PARTIAL_PREFIX = ".partial-"


def checkpoints_root(output_dir: Path) -> Path:
    return Path(output_dir) / CHECKPOINTS


def partial_checkpoint_dir(output_dir: Path, step: int) -> Path:
    """Where the checkpoint of `step` is assembled; the same path for every process of a run."""
    return checkpoints_root(output_dir) / f"{PARTIAL_PREFIX}step-{step:07d}"


def commit_checkpoint(output_dir: Path, partial: Path, step: int) -> Path:
    """Move a complete partial checkpoint into place, point LATEST at it, drop the older ones."""
    root = checkpoints_root(output_dir)
    final = root / f"step-{step:07d}"
    suffix = 1
    while final.exists():  # the same step saved twice (a cancel right after resuming): keep both until LATEST moves
        suffix += 1
        final = root / f"step-{step:07d}-{suffix}"
    os.replace(partial, final)
    write_text_atomically(root / LATEST, final.name)
    for entry in root.iterdir():
        if entry.is_dir() and entry != final:
            shutil.rmtree(entry, ignore_errors=True)
    return final


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint folder itself, or the newest complete checkpoint of a run's output_dir."""
    path = Path(path)
    if (path / TRAINING_STATE).is_file():
        return path
    for root in (checkpoints_root(path), path):
        if (root / LATEST).is_file():
            return root / (root / LATEST).read_text(encoding="utf-8").strip()
    raise FileNotFoundError(f"No checkpoint in {path}")


def write_text_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f"{PARTIAL_PREFIX}{path.name}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_json_atomically(path: Path, payload: dict) -> None:
    write_text_atomically(path, json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")


def replace_dir(partial: Path, final: Path) -> None:
    """Put a finished folder in the place of `final`. A directory cannot be renamed over a non-empty
    one, so the old one is first moved aside; it is removed only once the new one is in place."""
    aside = final.with_name(f"{PARTIAL_PREFIX}old-{final.name}")
    shutil.rmtree(aside, ignore_errors=True)
    if final.exists():
        os.replace(final, aside)
    os.replace(partial, final)
    shutil.rmtree(aside, ignore_errors=True)


def capture_rng() -> dict:
    """Every random generator the run draws from (dropout: torch), in a form `torch.load(weights_only=True)` reads."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gaussian),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
