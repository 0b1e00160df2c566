"""Training examples as token ids and labels, and the order they are seen in.

An example is the detector's own in-context prompt (`detection_prompt`, chat template with the
generation prompt) followed by the answer — the JSON list of the frame's characters, sorted, as
`parse_detection` reads it — and the end-of-turn token. Only the answer tokens carry labels.

Every prompt of a run starts with the same references, descriptions and instructions; only the
frame differs. `EncodedExample.split` marks where the frame begins, so a micro-batch can compute
that shared prefix once (`Batch.prefix_ids`) and run only each example's own suffix.
"""

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from workers.train.config import TrainExample
from workers.vlm.backends import PromptImages
from workers.vlm.prompts import CharacterCard, detection_prompt

IGNORE_INDEX = -100  # cross-entropy skips these labels
END_OF_TURN = "<|im_end|>"  # what Qwen chat models end an answer with; generation stops on it

ImageRef = tuple[Path, int]  # an image file and the pixel budget it is shown at


def answer_text(names: Iterable[str]) -> str:
    """The target answer: e.g. ["Ellie", "Victor"], sorted like `parse_detection` sorts, or []."""
    return json.dumps(sorted(set(names), key=str.casefold), ensure_ascii=False)


@dataclass(frozen=True)
class EncodedExample:
    key: str
    input_ids: torch.Tensor  # (L,) prompt, answer, end of turn
    labels: torch.Tensor  # (L,) IGNORE_INDEX except on the answer and end of turn
    position_ids: torch.Tensor  # (3, L) Qwen2.5-VL's 3-D RoPE positions of the whole sequence
    images: tuple[ImageRef, ...]  # in prompt order; the frame is the last
    split: int  # index of the frame's <|vision_start|>: all before it is the run's shared prefix

    @property
    def answer_tokens(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())

    @property
    def prompt_length(self) -> int:
        return int((self.labels == IGNORE_INDEX).sum())


class ExampleEncoder:
    """Builds each example exactly as the detector's backend builds its prompt, plus the answer."""

    def __init__(
        self,
        processor,
        rope_index,
        roster: Sequence[CharacterCard],
        max_references: int,
        reference_max_pixels: int,
        target_max_pixels: int,
    ):
        self.processor = processor
        self.rope_index = rope_index  # the model's own get_rope_index
        self.roster = list(roster)
        self.max_references = max_references
        self.budgets = (reference_max_pixels, target_max_pixels)
        self.images = PromptImages(reference_max_pixels, target_max_pixels)
        tokenizer = processor.tokenizer
        end_of_turn = tokenizer.convert_tokens_to_ids(END_OF_TURN)
        self.end_of_turn = end_of_turn if end_of_turn != tokenizer.unk_token_id else tokenizer.eos_token_id
        self.vision_start = tokenizer.convert_tokens_to_ids("<|vision_start|>")

    def encode(self, example: TrainExample) -> EncodedExample:
        prompt = detection_prompt(self.roster, example.image_path, self.max_references)
        text = self.processor.apply_chat_template(prompt.messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=[text], images=[self.images.load(prompt)], return_tensors="pt")
        # The answer is tokenized on its own, as generation produces it after the prompt's last token.
        answer = self.processor.tokenizer(answer_text(example.names), add_special_tokens=False)["input_ids"]
        answer = torch.tensor([*answer, self.end_of_turn], dtype=torch.long)
        prompt_ids = inputs["input_ids"][0]
        input_ids = torch.cat([prompt_ids, answer])
        token_types = torch.cat([inputs["mm_token_type_ids"][0], torch.zeros_like(answer)])
        positions, _ = self.rope_index(
            input_ids[None], mm_token_type_ids=token_types[None], image_grid_thw=inputs["image_grid_thw"]
        )
        labels = torch.cat([torch.full_like(prompt_ids, IGNORE_INDEX), answer])
        images = tuple(
            (Path(path), self.budgets[1] if index == prompt.target_index else self.budgets[0])
            for index, path in enumerate(prompt.images)
        )
        split = int((prompt_ids == self.vision_start).nonzero()[-1])
        return EncodedExample(example.key, input_ids, labels, positions[:, 0], images, split)


@dataclass
class Batch:
    """A micro-batch, right-padded. With a shared prefix, `input_ids` etc. are the suffixes only."""

    input_ids: torch.Tensor  # (B, S)
    labels: torch.Tensor  # (B, S)
    position_ids: torch.Tensor  # (3, B, S)
    attention_mask: torch.Tensor  # (B, P + S): the prefix's tokens, then each row's own
    images: list[ImageRef]  # the suffixes' images, row by row
    prefix_ids: torch.Tensor | None = None  # (1, P)
    prefix_position_ids: torch.Tensor | None = None  # (3, 1, P)
    prefix_images: list[ImageRef] | None = None

    @property
    def answer_tokens(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())

    def to(self, device: torch.device) -> "Batch":
        move = {
            name: value.to(device) if isinstance(value, torch.Tensor) else value for name, value in vars(self).items()
        }
        return Batch(**move)


def _shares_prefix(examples: Sequence[EncodedExample]) -> bool:
    first = examples[0]
    return len(examples) > 1 and all(
        example.split == first.split and torch.equal(example.input_ids[: first.split], first.input_ids[: first.split])
        for example in examples[1:]
    )


def collate(examples: Sequence[EncodedExample], pad_id: int, share_prefix: bool) -> Batch:
    shared = share_prefix and _shares_prefix(examples)
    start = examples[0].split if shared else 0
    suffixes = [example.input_ids[start:] for example in examples]
    length = max(len(ids) for ids in suffixes)
    rows = len(examples)
    input_ids = torch.full((rows, length), pad_id, dtype=torch.long)
    labels = torch.full((rows, length), IGNORE_INDEX, dtype=torch.long)
    # Padding sits on the right, after every real token, so its positions are never attended to.
    position_ids = torch.zeros((3, rows, length), dtype=torch.long)
    attention_mask = torch.zeros((rows, start + length), dtype=torch.long)
    images: list[ImageRef] = []
    for row, example in enumerate(examples):
        size = len(example.input_ids) - start
        input_ids[row, :size] = example.input_ids[start:]
        labels[row, :size] = example.labels[start:]
        position_ids[:, row, :size] = example.position_ids[:, start:]
        attention_mask[row, : start + size] = 1
        images.extend(example.images[-1:] if shared else example.images)
    batch = Batch(input_ids, labels, position_ids, attention_mask, images)
    if shared:
        first = examples[0]
        batch.prefix_ids = first.input_ids[None, :start]
        batch.prefix_position_ids = first.position_ids[:, None, :start]
        batch.prefix_images = list(first.images[:-1])
    return batch


def epoch_batches(examples: Sequence[EncodedExample], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Micro-batches of example indices for one epoch. The order depends only on (seed, epoch), so a
    resumed run sees exactly the batches an uninterrupted one would. Examples with the same prompt
    length (same frame size) are batched together, so padding is at most a few answer tokens."""
    rng = random.Random(f"detector-sft:{seed}:{epoch}")
    order = list(range(len(examples)))
    rng.shuffle(order)
    by_length: dict[int, list[int]] = defaultdict(list)
    for index in order:
        by_length[examples[index].prompt_length].append(index)
    batches = [
        members[start : start + batch_size]
        for members in by_length.values()
        for start in range(0, len(members), batch_size)
    ]
    rng.shuffle(batches)
    return batches


def step_plan(batches: list[list[int]], micro_batches_per_step: int) -> list[list[list[int]]]:
    """Group micro-batches into optimizer steps. Every process must run the same number of
    micro-batches, so a short last step is filled with the epoch's first micro-batches."""
    steps = -(-len(batches) // micro_batches_per_step)
    padded = [batches[index % len(batches)] for index in range(steps * micro_batches_per_step)]
    return [padded[start : start + micro_batches_per_step] for start in range(0, len(padded), micro_batches_per_step)]
