"""The demo world's CLIP: the real open_clip architecture at toy size, trained contrastively on
frames of the demo world and their script's captions (workers/demo/script.py).

A random-weight CLIP (workers/vision/tiny.py) scores every caption alike. This one has learned
which words go with which pictures, so the demo's frames cluster by scene and its CLIPScore says
whether a caption names the right place, cast and props. Like the captioner
(workers/demo/training.py) it learns from another stretch of the world — the generator run with
`world_seed + TRAINING_SEED_OFFSET` — never from the frames the demo evaluates.

The folder it is written to is an open_clip `local-dir:` model (`open_clip_config.json` and
`open_clip_model.safetensors`) beside the demo models' marker, so it loads through the ordinary
`load_clip` / `open_clip.get_tokenizer` path with `ClipModelSpec(model_name="local-dir:<folder>")`.
Its marker is the demo models' (workers/demo/training.py): a folder trained with other settings, or
before `TRAINING_CODE_VERSION` was bumped (bump it when what the CLIP learns, or how, changes), is
trained again.
"""

import json
import logging
import math
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from workers.demo.script import shot_caption
from workers.demo.training import (
    MARKER,
    LearnsFromAnotherSeed,
    Progress,
    is_trained,
    training_world,
    write_marker,
)
from workers.demo.world import DemoWorldConfig, ShotPlan, plan_demo_world, render_shot_frame
from workers.metrics.clipscore import split_into_chunks
from workers.vision.clip import LOCAL_DIR, ClipModelSpec

CONFIG_NAME = "open_clip_config.json"  # the names open_clip's `local-dir:` loader looks for
WEIGHTS_NAME = "open_clip_model.safetensors"
VOCAB_SIZE = 49408  # open_clip's SimpleTokenizer, which CLIPScore needs: its ids go up to 49407
CONTEXT_LENGTH = 77  # as ViT-B/32's text tower: CLIPScore cuts long captions into chunks this size
HEAD_WIDTH = 32


@dataclass(frozen=True)
class ClipTraining(LearnsFromAnotherSeed):
    world_seed: int  # the demo world's seed; the CLIP learns from world_seed + TRAINING_SEED_OFFSET
    seconds: int = 600  # shots of the training world
    characters: int = 6
    frame_width: int = 192  # frames are drawn at the demo world's 16:9, then squashed to image_size
    frame_height: int = 108
    frames_per_shot: int = 4  # the shot's animation steps: the image of a shot changes from epoch to epoch
    image_size: int = 64
    patch_size: int = 8
    embed_dim: int = 64
    width: int = 64  # both towers
    layers: int = 2  # both towers
    epochs: int = 24
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 0


def clip_model_config(config: ClipTraining) -> dict:
    """The open_clip config of the demo CLIP (`model_cfg` and `preprocess_cfg` of a local-dir model)."""
    heads = max(1, config.width // HEAD_WIDTH)
    return {
        "model_cfg": {
            "embed_dim": config.embed_dim,
            "vision_cfg": {
                "image_size": config.image_size,
                "layers": config.layers,
                "width": config.width,
                "patch_size": config.patch_size,
                "head_width": HEAD_WIDTH,
            },
            "text_cfg": {
                "context_length": CONTEXT_LENGTH,
                "vocab_size": VOCAB_SIZE,
                "width": config.width,
                "heads": heads,
                "layers": config.layers,
            },
        },
        # Squash, not the default centre crop: a crop of a 16:9 frame would cut off the characters
        # near its edges, whom the caption still names.
        "preprocess_cfg": {"resize_mode": "squash"},
    }


# --- what a frame is paired with ---------------------------------------------------------------------------------


def caption_sentence(caption: dict) -> str:
    """The caption's four fields as plain prose: the same facts without the JSON syntax."""
    people = [f"{character['name']} is {character['description']}." for character in caption["characters"]]
    background = caption["background"][0].upper() + caption["background"][1:]
    return " ".join([caption["scene"], f"{background}.", *people, f"Also: {caption['salient_objects']}."])


def caption_texts(plan: ShotPlan) -> tuple[str, str]:
    """The two texts a shot's frame is paired with, one drawn at random each epoch.

    CLIPScore is computed on the product's captions, which are the JSON of the four fields
    (as the captioner writes them): training on that very form makes the scores comparable to the
    ones the demo shows. The prose form teaches that the words matter, not the braces and field
    names every caption shares, so a caption worded differently is still judged on its content.
    """
    caption = shot_caption(plan)
    return json.dumps(caption, ensure_ascii=False), caption_sentence(caption)


# --- the data ------------------------------------------------------------------------------------------------------


def _training_world(config: ClipTraining) -> DemoWorldConfig:
    return training_world(config, fps=config.frames_per_shot)  # every animation step of a shot is a view of it


def _frame_tensors(config: ClipTraining, plans, preprocess):
    """(shots, frames_per_shot, 3, S, S): every step of every shot, preprocessed once."""
    import torch

    world = _training_world(config)
    steps = range(config.frames_per_shot)
    return torch.stack([torch.stack([preprocess(render_shot_frame(p, world, step=s)) for s in steps]) for p in plans])


def _chunk_rows(text: str, tokenizer) -> tuple[list[list[int]], list[int]]:
    """The text tower's token rows for `text`, cut into chunks exactly as CLIPScore cuts it, and
    each chunk's weight in the caption's embedding (its token count, as CLIPScore weighs it)."""
    chunks = split_into_chunks(text, tokenizer.encode, CONTEXT_LENGTH - 2)
    rows = [[tokenizer.sot_token_id, *ids, tokenizer.eot_token_id] for ids in chunks]
    return [row + [0] * (CONTEXT_LENGTH - len(row)) for row in rows], [max(len(ids), 1) for ids in chunks]


def _encode_captions(model, texts: list[tuple[list[list[int]], list[int]]]):
    """Caption embeddings as CLIPScore computes them (chunk embeddings L2-normalised, averaged
    weighted by their token counts, renormalised), but differentiable: the CLIP learns the very
    embedding it is scored with, long captions included."""
    import torch
    import torch.nn.functional as F

    tokens = torch.tensor([row for rows, _ in texts for row in rows])
    weights = torch.tensor([weight for _, chunk_weights in texts for weight in chunk_weights], dtype=torch.float32)
    owners = torch.tensor([index for index, (rows, _) in enumerate(texts) for _ in rows])
    chunks = F.normalize(model.encode_text(tokens), dim=-1) * weights[:, None]
    summed = torch.zeros(len(texts), chunks.shape[1]).index_add(0, owners, chunks)
    return F.normalize(summed, dim=-1)


# --- training ------------------------------------------------------------------------------------------------------


def _quietly(build):
    """open_clip logs "no pretrained weights" for a model that is about to be trained (the point
    here), and every step of reading a local folder."""
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        return build()
    finally:
        logging.getLogger().setLevel(level)


@contextmanager
def _one_thread():
    """A toy model's matrices are too small to split between threads: on a busy two-core machine,
    two threads made each step 15× slower than one (they wait on each other)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit_clip(model, frames, texts, config: ClipTraining, on_progress: Progress | None = None) -> list[float]:
    """Symmetric InfoNCE (open_clip's ClipLoss) over shuffled batches of shots, a random animation
    step and a random caption form per shot each epoch (AdamW, one-cycle); each epoch's mean loss.
    `frames`: (shots, steps, 3, S, S); `texts`: per shot, its caption forms as `_chunk_rows` gives them."""
    import torch
    from open_clip.loss import ClipLoss

    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    loss_fn = ClipLoss()
    shots = len(texts)
    steps_per_epoch = (shots + config.batch_size - 1) // config.batch_size
    total = steps_per_epoch * config.epochs
    if total == 0:
        return []
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=total, pct_start=0.1
    )
    model.train()
    losses, step = [], 0
    for epoch in range(config.epochs):
        order = list(range(shots))
        rng.shuffle(order)
        epoch_loss = 0.0
        for start in range(0, shots, config.batch_size):
            members = order[start : start + config.batch_size]
            images = frames[members, [rng.randrange(frames.shape[1]) for _ in members]]
            captions = [texts[i][rng.randrange(len(texts[i]))] for i in members]
            image_features = torch.nn.functional.normalize(model.encode_image(images), dim=-1)
            loss = loss_fn(image_features, _encode_captions(model, captions), model.logit_scale.exp())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            with torch.no_grad():  # as open_clip's trainer: a temperature below 1/100 is unstable
                model.logit_scale.clamp_(0, math.log(100))
            step += 1
            epoch_loss += loss.item()
            if on_progress is not None:
                on_progress(step, total, f"epoch {epoch + 1}/{config.epochs}, loss {loss.item():.3f}")
        losses.append(epoch_loss / steps_per_epoch)
    model.eval()
    return losses


def demo_clip_spec(folder: Path) -> ClipModelSpec:
    """The spec that loads the CLIP in `folder`. Its key is the folder's path (`local-dir:` models
    ignore `pretrained`): models in different folders never share a vector space, but a folder
    trained again with other settings keeps its key, so name the folder after what changes the model."""
    return ClipModelSpec(model_name=f"{LOCAL_DIR}{Path(folder).resolve()}", pretrained=None)


def train_demo_clip(folder: Path, config: ClipTraining, on_progress: Progress | None = None) -> ClipModelSpec:
    """The demo's CLIP in `folder`, trained unless a model trained the same way is there."""
    import open_clip
    import torch
    from safetensors.torch import save

    folder = Path(folder)
    settings = asdict(config)
    spec = demo_clip_spec(folder)
    if is_trained(folder, settings):
        return spec
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).unlink(missing_ok=True)  # from here on the folder holds no trained model
    (folder / WEIGHTS_NAME).unlink(missing_ok=True)  # else the build below would load the old weights
    (folder / CONFIG_NAME).write_text(json.dumps(clip_model_config(config), indent=2))
    torch.manual_seed(config.seed)
    # Built through the loader itself, so training sees exactly the preprocessing `load_clip` gives.
    model, _, preprocess = _quietly(lambda: open_clip.create_model_and_transforms(spec.model_name))
    tokenizer = _quietly(lambda: open_clip.get_tokenizer(spec.model_name))
    plans = plan_demo_world(_training_world(config))
    texts = [[_chunk_rows(text, tokenizer) for text in caption_texts(plan)] for plan in plans]
    with _one_thread():
        frames = _frame_tensors(config, plans, preprocess)
        losses = fit_clip(model, frames, texts, config, on_progress)

    partial = folder / f"{WEIGHTS_NAME}.partial"
    partial.write_bytes(save({name: tensor.contiguous() for name, tensor in model.state_dict().items()}))
    partial.replace(folder / WEIGHTS_NAME)  # a half-written checkpoint is never loaded
    trained_on = f"demo world seed {config.training_seed} ({len(plans)} shots), not the demo's seed"
    write_marker(folder, "clip", settings, trained_on, losses, started)
    return spec
