"""Demo-world models that have learned the demo world: toy-size real architectures trained here.

The stock `tiny` models (workers/vlm/tiny.py) have random weights: they run every code path but
say nothing. The demo's models are the same architectures, trained on CPU in minutes on *another
stretch* of the demo world — the generator run with another seed — so they never see the frames
the demo evaluates or the gold set's labels, and the demo's numbers are not leaked:

- the captioner (InternVL) learns to write a shot's structured caption (workers/demo/script.py)
  from the frame and the characters its prompt gives. Every shot is given with its true cast as
  the detector's answer, so it trusts what the detector says: a better detector gives better
  captions. A seeded share of the shots is given once more on the no-detection prompt (the whole
  roster, "any of them may or may not appear"), answered with the same true caption: a model
  that never saw that prompt would sometimes name no one at all. It still tells the roster's
  figures apart poorly, so without detection it names characters who are not there, as in the
  paper.
- the detector base (Qwen2.5-VL) learns to *see* the figures — each frame answered with their
  looks, never their names — as a pretrained VLM has learned to see before anyone fine-tunes it.
  The names it learns only from the gold labels, in the product's SFT job.

Each model is written with `save_pretrained` beside a marker holding the world seed and
`TRAINING_CODE_VERSION`; a folder with another marker is trained again. Loading goes through the
ordinary `from_pretrained` path, like a downloaded checkpoint.
"""

import io
import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from workers.demo.script import LOOKS, script_texts, shot_caption
from workers.demo.sprites import CHARACTER_NAMES, character_spec
from workers.demo.world import (
    DemoWorldConfig,
    plan_demo_world,
    plan_shuffled_shots,
    reference_images,
    render_shot_frame,
)
from workers.media.assets import AssetEncoding, encode_jpeg
from workers.vlm.prompts import CAPTION_INSTRUCTIONS, CharacterCard, Prompt, caption_prompt

TRAINING_CODE_VERSION = "3"  # bump when what a demo model learns, or how, changes: cached models retrain
MARKER = "VIVE_DEMO_MODEL.json"
TRAINING_SEED_OFFSET = 1000  # the stretch of the world the models learn from: never the demo's own seed

Progress = Callable[[int, int, str], None]  # (done, total, what)


class LearnsFromAnotherSeed:
    """What every demo model's training settings share: the demo world's seed they must not learn
    from, and the size and cast of the frames they draw from another stretch of it."""

    world_seed: int
    seconds: int
    characters: int
    frame_width: int
    frame_height: int

    @property
    def training_seed(self) -> int:
        return self.world_seed + TRAINING_SEED_OFFSET


def training_world(config: LearnsFromAnotherSeed, fps: int = 4) -> DemoWorldConfig:
    """The stretch of the world a demo model learns from: the generator run with another seed."""
    return DemoWorldConfig(
        seconds=config.seconds,
        width=config.frame_width,
        height=config.frame_height,
        characters=config.characters,
        seed=config.training_seed,
        fps=fps,
    )


@dataclass(frozen=True)
class CaptionerTraining(LearnsFromAnotherSeed):
    world_seed: int  # the demo world's seed; the captioner learns from world_seed + TRAINING_SEED_OFFSET
    seconds: int = 600  # shots of the training world (one frame each, at a random step of the shot)
    characters: int = 6
    frame_width: int = 192
    frame_height: int = 108
    image_size: int = 64  # the captioner's tile: frames and references are resized to it
    hidden_size: int = 128
    layers: int = 2
    vocab_size: int = 1200
    epochs: int = 6
    batch_size: int = 16
    learning_rate: float = 2e-3
    seed: int = 0
    # Shots given once more on the whole-roster prompt (the no-detection pipeline's). A little
    # goes a long way and each costs ~3x a detected example (six cards): 0.1 adds ~15% time.
    whole_roster_share: float = 0.1


def trained_marker(folder: Path) -> dict | None:
    marker = Path(folder) / MARKER
    return json.loads(marker.read_text()) if marker.exists() else None


def is_trained(folder: Path, settings: dict) -> bool:
    """The marker is written last, with what the model was trained with: anything else retrains."""
    marker = trained_marker(folder)
    if marker is None:
        return False
    return marker.get("code_version") == TRAINING_CODE_VERSION and marker.get("settings") == settings


def write_marker(folder: Path, kind: str, settings: dict, trained_on: str, losses: list[float], started: float) -> None:
    """Written last, once the model is saved: a folder without it is trained again."""
    marker = {
        "kind": kind,
        "code_version": TRAINING_CODE_VERSION,
        "settings": settings,
        "trained_on": trained_on,
        "epoch_losses": losses,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (Path(folder) / MARKER).write_text(json.dumps(marker, indent=2))


# --- examples ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerExample:
    prompt: Prompt  # image paths unused: the images travel beside it, in order
    images: tuple[Image.Image, ...]
    answer: str


def _roster_cards(characters: int) -> list[CharacterCard]:
    return [CharacterCard(name, character_spec(name).description) for name in CHARACTER_NAMES[:characters]]


def caption_examples(config: CaptionerTraining) -> list[AnswerExample]:
    """Each shot of the training world: its frame, the true cast's cards and references, its caption.
    A seeded `whole_roster_share` of the shots comes once more with the whole roster's cards and
    references (caption_prompt with detected=False, as the no-detection pipeline asks) and the
    same true caption."""
    world = training_world(config)
    rng = random.Random(config.seed)
    roster = CHARACTER_NAMES[: config.characters]
    references = {name: reference_images(name, config.image_size)[0] for name in roster}
    cards = {card.name: card for card in _roster_cards(config.characters)}
    plans = plan_demo_world(world)
    # A generator of its own: the frames drawn below are the same whatever the share.
    whole_roster = set(
        random.Random(config.seed).sample(range(len(plans)), round(config.whole_roster_share * len(plans)))
    )
    examples = []
    for index, plan in enumerate(plans):
        frame = render_shot_frame(plan, world, step=rng.randrange(world.fps))
        answer = json.dumps(shot_caption(plan), ensure_ascii=False)
        examples.append(_caption_example(plan.shot.characters, cards, references, frame, answer, detected=True))
        if index in whole_roster:
            examples.append(_caption_example(roster, cards, references, frame, answer, detected=False))
    return examples


def _caption_example(
    names: Sequence[str],
    cards: dict[str, CharacterCard],
    references: dict[str, Image.Image],
    frame: Image.Image,
    answer: str,
    *,
    detected: bool,
) -> AnswerExample:
    # Reference paths are the names, placeholders: the prompt puts them in its own order (as the
    # product's prompt puts the real references), and the images follow that order.
    given = [CharacterCard(name, cards[name].description, (Path(name),)) for name in names]
    prompt = caption_prompt(given, Path("frame"), detected=detected)
    images = (*(references[str(path)] for path in prompt.images[: prompt.target_index]), frame)
    return AnswerExample(prompt, images, answer)


# --- the model ---------------------------------------------------------------------------------------------------


def _captioner_corpus(config: CaptionerTraining) -> list[str]:
    from workers.vlm.tiny import CORPUS

    return [
        *CORPUS,
        CAPTION_INSTRUCTIONS,
        "The character detector found no known character in the frame.",
        ", who appear in the frame according to the character detector",
        "; any of them may or may not appear in the frame",
        *script_texts(),
        *(card.description for card in _roster_cards(len(CHARACTER_NAMES))),
    ]


def build_untrained_captioner(folder: Path, config: CaptionerTraining):
    """An InternVL at toy size with a tokenizer made for the demo world's words (one token per word)."""
    import torch
    from transformers import InternVLForConditionalGeneration

    from workers.train.tiny import word_tokenizer
    from workers.vlm.tiny import (
        INTERNVL_CHAT_TEMPLATE,
        INTERNVL_EXTRA_SPECIALS,
        INTERNVL_SPECIALS,
        internvl_processor_and_config,
    )

    specials = (INTERNVL_SPECIALS, INTERNVL_CHAT_TEMPLATE, INTERNVL_EXTRA_SPECIALS)
    tokenizer = word_tokenizer(_captioner_corpus(config), config.vocab_size, *specials)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in INTERNVL_SPECIALS}
    processor, model_config = internvl_processor_and_config(
        tokenizer, image_size=config.image_size, hidden_size=config.hidden_size, layers=config.layers
    )
    torch.manual_seed(config.seed)
    model = InternVLForConditionalGeneration(model_config)
    with torch.no_grad():  # a trained model's output scale (see workers/train/tiny.py)
        model.lm_head.weight.normal_(0.0, config.hidden_size**-0.5)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model, processor


# --- training ----------------------------------------------------------------------------------------------------

END_OF_TURN = "<|im_end|>"
IGNORE_INDEX = -100
IMAGE_INPUTS = ("pixel_values", "image_grid_thw")  # InternVL's tiles; Qwen2.5-VL's patches and their grids


def _encoded(processor, example: AnswerExample) -> dict:
    prompt = processor.apply_chat_template(example.prompt.messages, add_generation_prompt=True, tokenize=False)
    images = [list(example.images)] if example.images else None
    prompt_ids = processor(text=[prompt], images=images, return_tensors="pt")
    full = processor(text=[prompt + example.answer + END_OF_TURN], images=images, return_tensors="pt")
    labels = full["input_ids"].clone()
    labels[:, : prompt_ids["input_ids"].shape[1]] = IGNORE_INDEX
    images_in = {key: full[key] for key in IMAGE_INPUTS if full.get(key) is not None}
    # Which tokens are image tokens: Qwen2.5-VL builds its 3-D (time, height, width) positions from
    # it; without it the model falls back to 1-D positions, unlike at inference.
    token_types = full.get("mm_token_type_ids")
    return {
        "input_ids": full["input_ids"][0],
        "labels": labels[0],
        "token_types": token_types[0] if token_types is not None else None,
        "images": images_in,
    }


def _collate(rows: Sequence[dict], pad_id: int) -> dict:
    import torch

    length = max(len(row["input_ids"]) for row in rows)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(rows), length), dtype=torch.long)
    token_types = torch.zeros((len(rows), length), dtype=torch.long)  # padding and answers: text
    for index, row in enumerate(rows):
        size = len(row["input_ids"])
        input_ids[index, :size], labels[index, :size], attention[index, :size] = row["input_ids"], row["labels"], 1
        if row["token_types"] is not None:
            token_types[index, :size] = row["token_types"]
    batch = {"input_ids": input_ids, "labels": labels, "attention_mask": attention}
    if any(row["token_types"] is not None for row in rows):
        batch["mm_token_type_ids"] = token_types
    for key in IMAGE_INPUTS:  # every row's images, in order: the model pairs them with its image tokens
        parts = [row["images"][key] for row in rows if key in row["images"]]
        if parts:
            batch[key] = torch.cat(parts)
    return batch


def fit_answers(
    model,
    processor,
    examples: Sequence[AnswerExample],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    on_progress: Progress | None = None,
) -> list[float]:
    """Full fine-tuning on answer tokens only (AdamW, cosine decay); returns each epoch's mean loss."""
    import torch

    torch.manual_seed(seed)
    encoded = [_encoded(processor, example) for example in examples]
    pad_id = processor.tokenizer.pad_token_id
    steps_per_epoch = (len(encoded) + batch_size - 1) // batch_size
    total = steps_per_epoch * epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=total, pct_start=0.1)
    rng = random.Random(seed)
    model.train()
    losses, step = [], 0
    # Batches of similar length (little padding: most of a step's time is the longest row), in a
    # new random order every epoch, drawn from a freshly shuffled pool so batches change too.
    for epoch in range(epochs):
        order = list(range(len(encoded)))
        rng.shuffle(order)
        order.sort(key=lambda i: len(encoded[i]["input_ids"]) // 16)
        batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        rng.shuffle(batches)
        epoch_loss = 0.0
        for members in batches:
            batch = _collate([encoded[i] for i in members], pad_id)
            loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            epoch_loss += loss.item()
            if on_progress is not None:
                on_progress(step, total, f"epoch {epoch + 1}/{epochs}, loss {loss.item():.3f}")
        losses.append(epoch_loss / steps_per_epoch)
    model.eval()
    return losses


def train_demo_captioner(folder: Path, config: CaptionerTraining, on_progress: Progress | None = None) -> Path:
    """The demo's captioner in `folder`, trained unless a model trained the same way is there."""
    folder = Path(folder)
    settings = asdict(config)
    if is_trained(folder, settings):
        return folder
    started = time.perf_counter()
    examples = caption_examples(config)
    model, processor = build_untrained_captioner(folder, config)
    losses = fit_answers(
        model, processor, examples, config.epochs, config.batch_size, config.learning_rate, config.seed, on_progress
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    trained_on = f"demo world seed {config.training_seed} ({len(examples)} shots), not the demo's seed"
    write_marker(folder, "captioner", settings, trained_on, losses, started)
    return folder


# --- the detector base ----------------------------------------------------------------------------------------------

LOOKS_INSTRUCTION = "List what each figure in the frame looks like."


@dataclass(frozen=True)
class DetectorTraining(LearnsFromAnotherSeed):
    """How the detector base learns to see before the product fine-tunes it: frames of another
    stretch of the world, each answered with the *looks* of the figures in it (e.g. "a brown bear
    with an orange scarf"), never their names. It learns to tell the figures apart; who is called
    what it learns only from the gold labels, in the product's own SFT job."""

    world_seed: int  # learns from world_seed + TRAINING_SEED_OFFSET, shots shuffled (plan_shuffled_shots)
    seconds: int = 1200
    characters: int = 6
    frame_width: int = 640  # the demo film's size, resized to the detector's own pixel budget as its frames are
    frame_height: int = 360
    jpeg_quality: int = AssetEncoding.jpeg_quality  # the film's frames reach the detector as stored JPEGs
    target_max_pixels: int = 224 * 128  # the demo detector's (apps/modelhub/services.py)
    epochs: int = 16
    batch_size: int = 16
    learning_rate: float = 2e-3
    seed: int = 0


def looks_answer(names: Sequence[str]) -> str:
    """The figures' looks in the order the detector lists names (alphabetical): what the base learns
    to say is what a name will later stand for."""
    return json.dumps([LOOKS[name] for name in sorted(names, key=str.casefold)])


def detector_examples(config: DetectorTraining) -> list[AnswerExample]:
    """Shots with a random place and cast each: in the film a scene's place gives its cast away,
    and a model that learned that would not have learned to look at the figures."""
    world = training_world(config)
    rng = random.Random(config.seed)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": LOOKS_INSTRUCTION}]}]
    prompt = Prompt("demo-looks", messages, [Path("frame")], 0)
    return [
        AnswerExample(
            prompt,
            (_as_stored(render_shot_frame(plan, world, step=rng.randrange(world.fps)), config),),
            looks_answer(plan.shot.characters),
        )
        for plan in plan_shuffled_shots(world)
    ]


def _as_stored(frame: Image.Image, config: DetectorTraining) -> Image.Image:
    """The frame as the product stores a video frame (workers/media/assets.py): a JPEG, so small
    figures' colours bleed a little. A base that learned on clean drawings would meet blurrier ones."""
    return Image.open(io.BytesIO(encode_jpeg(frame, config.jpeg_quality))).convert("RGB")


def train_demo_detector_base(folder: Path, config: DetectorTraining, on_progress: Progress | None = None) -> Path:
    """The detector to fine-tune from, in `folder`: the learnable toy Qwen2.5-VL (workers/train/tiny.py),
    its tokenizer knowing the roster's names and descriptions, taught to see (DetectorTraining).
    Its in-context answers name characters no better than chance: it has never been told a name."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from workers.train.tiny import build_learnable_tiny_qwen2_5_vl

    folder = Path(folder)
    settings = asdict(config)
    if is_trained(folder, settings):
        return folder
    started = time.perf_counter()
    names = CHARACTER_NAMES[: config.characters]
    texts = [*names, *(card.description for card in _roster_cards(config.characters)), *script_texts()]
    untrained = build_learnable_tiny_qwen2_5_vl(
        folder / "untrained", texts=[*texts, LOOKS_INSTRUCTION], max_pixels=config.target_max_pixels
    )
    model = AutoModelForImageTextToText.from_pretrained(untrained)
    processor = AutoProcessor.from_pretrained(untrained)
    examples = detector_examples(config)
    losses = fit_answers(
        model, processor, examples, config.epochs, config.batch_size, config.learning_rate, config.seed, on_progress
    )
    (folder / MARKER).unlink(missing_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    shutil.rmtree(untrained)
    trained_on = f"demo world seed {config.training_seed} ({len(examples)} shuffled shots), looks not names"
    write_marker(folder, "detector base", settings, trained_on, losses, started)
    return folder
