"""Fold a trained adapter into the base weights, and check that nothing changed.

A merged model loads without PEFT (any server: vLLM, SGLang, plain transformers) and skips the
adapter's extra matmuls. Merging is exact in real arithmetic but not in floating point, so the
merged model's greedy answers are compared with the adapter's on the validation frames.
"""

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from workers.train.checkpoint import PARTIAL_PREFIX, replace_dir
from workers.train.config import TrainExample
from workers.vlm.backends import ModelSpec, TransformersBackend
from workers.vlm.prompts import CharacterCard, detection_prompt


@dataclass(frozen=True)
class MergeCheck:
    merged_dir: Path
    identical: bool  # every frame got the same greedy answer from both
    adapter_answers: dict[str, str]  # frame key → raw answer
    merged_answers: dict[str, str]

    @property
    def differing_keys(self) -> list[str]:
        return [key for key, answer in self.adapter_answers.items() if self.merged_answers[key] != answer]


def merge_and_check(
    base_model: str | Path,
    adapter_dir: str | Path,
    out_dir: str | Path,
    roster: Sequence[CharacterCard],
    examples: Sequence[TrainExample],
    spec: ModelSpec | None = None,
    max_references: int = 1,
) -> MergeCheck:
    """Write base + adapter merged into `out_dir` (model and processor), then decode `examples` with
    both through the detector's backend. `spec` carries the generation settings (pixel budgets,
    max_new_tokens, batch size); its model and adapter fields are replaced."""
    from transformers import AutoProcessor

    settings = spec or ModelSpec(name="merge-check")
    out_dir = Path(out_dir)
    with_adapter = TransformersBackend(replace(settings, model=str(base_model), adapter=str(adapter_dir)))
    prompts = [detection_prompt(list(roster), example.image_path, max_references) for example in examples]
    adapter_answers = [output.text for output in with_adapter.generate(prompts)]

    partial = out_dir.with_name(f"{PARTIAL_PREFIX}{out_dir.name}")
    shutil.rmtree(partial, ignore_errors=True)
    merged = with_adapter.model.merge_and_unload()
    merged.save_pretrained(partial)
    AutoProcessor.from_pretrained(base_model).save_pretrained(partial)
    replace_dir(partial, out_dir)
    del merged, with_adapter

    reloaded = TransformersBackend(replace(settings, model=str(out_dir), adapter=None))
    merged_answers = [output.text for output in reloaded.generate(prompts)]
    keys = [example.key for example in examples]
    return MergeCheck(
        merged_dir=out_dir,
        identical=adapter_answers == merged_answers,
        adapter_answers=dict(zip(keys, adapter_answers, strict=True)),
        merged_answers=dict(zip(keys, merged_answers, strict=True)),
    )
