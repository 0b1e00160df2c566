"""What constrained decoding (xgrammar) costs per generated token, on the product's path, same run.

    .venv/bin/python bench/constrained_bench.py [--frames 8] [--batch-size 8] [--sizes tiny small]

1. Product path: `TransformersBackend.generate` on caption prompts (3 reference images with names
   and descriptions + instructions + the frame), constrained off and on. Qwen2.5-VL goes through
   the shared-prefix loop, InternVL through batched `model.generate` with the logits processor.
   Per-token cost = (time at 40 new tokens − time at 8) / 32, per frame: the prefill cancels
   out. `small` is Qwen2.5-VL with the real vocabulary width (151,936 logits) and small layers,
   so the mask is applied over real-size logits (its tokenizer is still the tiny one's).
2. The mask alone at a real vocabulary: 151,936 tokens drawn like a BPE vocabulary (every
   printable character, then word pieces with and without a leading space, punctuation runs):
   per step, fill the row's bitmask + apply it to float32 logits + accept the chosen token, for
   the caption schema and a 7-name detection grammar, batch 1 and 16; and the one-off costs
   (tokenizer info, compiling each grammar).
"""

import argparse
import json
import random
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from workers.vlm.backends import ModelSpec, TransformersBackend  # noqa: E402
from workers.vlm.constrained import RowConstraints  # noqa: E402
from workers.vlm.prompts import CAPTION_JSON_SCHEMA, CharacterCard, Prompt, caption_prompt, detection_grammar  # noqa: E402
from workers.vlm.tiny import build_tiny_internvl  # noqa: E402

SHORT, LONG = 8, 40
BUDGETS = {"reference_max_pixels": 112 * 112, "target_max_pixels": 224 * 224}
NAMES = ["Bruno", "Ellie", "Luna", "Mira", "Pip", "Sprite", "Victor"]


def world(folder: Path, frames: int) -> tuple[list[CharacterCard], list[Path]]:
    cards = []
    for index, name in enumerate(NAMES[:3]):
        path = folder / f"{name}.png"
        image = Image.new("RGB", (256, 256), (245, 245, 240))
        ImageDraw.Draw(image).ellipse((60, 40, 200, 220), fill=(60 * index, 200 - 50 * index, 90))
        image.save(path)
        cards.append(CharacterCard(name, f"{name}, a round character.", (path,)))
    paths = []
    for index in range(frames):
        path = folder / f"frame{index}.jpg"
        image = Image.new("RGB", (640, 360), (100 + index * 15 % 150, 160, 220))
        ImageDraw.Draw(image).rectangle((index * 40 % 500, 100, index * 40 % 500 + 120, 300), fill=(200, 40, 40))
        image.save(path, quality=90)
        paths.append(path)
    return cards, paths


def backend_for(size: str, folder: Path, batch_size: int) -> TransformersBackend:
    if size == "internvl":
        model = build_tiny_internvl(folder / "tiny-internvl")
        return TransformersBackend(ModelSpec(name="tiny-internvl", model=str(model), batch_size=batch_size, **BUDGETS))
    from vlm_bench import build_backend  # the detection benchmark's builder: the same models

    return build_backend(size, folder, batch_size, BUDGETS)


def timed(backend: TransformersBackend, prompts: list[Prompt], constrained: bool, max_new_tokens: int):
    """Seconds per frame, and the model's forward passes per frame (they show whether the answers
    ran to max_new_tokens: a path that stopped early would make the difference below meaningless)."""
    backend.spec = ModelSpec(**{**backend.spec.__dict__, "constrained": constrained, "max_new_tokens": max_new_tokens})
    passes = [0]
    hook = backend.model.register_forward_pre_hook(lambda *_: passes.__setitem__(0, passes[0] + 1))
    try:
        started = time.perf_counter()
        backend.generate(prompts)
        seconds = (time.perf_counter() - started) / len(prompts)
    finally:
        hook.remove()
    batches = -(-len(prompts) // backend.spec.batch_size)
    return seconds, passes[0] / batches


def product_path(sizes: list[str], frames: int, batch_size: int, repeats: int) -> None:
    print(f"1. product path: caption prompts, {frames} frames, batch {batch_size}")
    print(f"   per token = (time at {LONG} new tokens − at {SHORT}) / {LONG - SHORT}, per frame; best of {repeats}")
    with tempfile.TemporaryDirectory(prefix="vive-constrained-bench-") as tmp:
        tmp = Path(tmp)
        cards, paths = world(tmp, frames)
        prompts = [caption_prompt(cards, path, detected=False) for path in paths]
        for size in sizes:
            backend = backend_for(size, tmp, batch_size)  # one model: off and on differ in the setting only
            for constrained in (False, True):
                timed(backend, prompts[:2], constrained, SHORT)  # warm-up (on: the grammar's compile)
            best: dict[tuple[bool, int], float] = {}
            passes: dict[tuple[bool, int], float] = {}
            for _ in range(repeats):  # interleaved, so drift on a shared machine hits both alike
                for constrained in (False, True):
                    for max_new_tokens in (SHORT, LONG):
                        key = (constrained, max_new_tokens)
                        seconds, passes[key] = timed(backend, prompts, constrained, max_new_tokens)
                        best[key] = min(best.get(key, seconds), seconds)
            per_token = {on: (best[(on, LONG)] - best[(on, SHORT)]) / (LONG - SHORT) for on in (False, True)}
            for on in (False, True):
                print(
                    f"  {size:8s} constrained {'on ' if on else 'off'}: {per_token[on] * 1e3:7.2f} ms per token "
                    f"(forward passes a batch: {passes[(on, SHORT)]:.0f}, {passes[(on, LONG)]:.0f})"
                )
            extra = (per_token[True] - per_token[False]) * 1e6
            print(f"  {size:8s} ratio on/off: {per_token[True] / per_token[False]:.2f}×  ({extra:+.0f} µs per token)")


def bpe_like_vocabulary(size: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocabulary = list(dict.fromkeys([chr(code) for code in range(32, 127)] + list(string.whitespace)))
    seen = set(vocabulary)
    letters = string.ascii_lowercase
    while len(vocabulary) < size:
        kind = rng.random()
        if kind < 0.7:
            piece = "".join(rng.choice(letters) for _ in range(rng.randint(2, 9)))
            piece = (" " if rng.random() < 0.5 else "") + (piece.capitalize() if rng.random() < 0.2 else piece)
        elif kind < 0.85:
            piece = "".join(rng.choice(string.punctuation + " ") for _ in range(rng.randint(2, 4)))
        else:
            piece = "".join(rng.choice("àéëïöüßçñøåæ漢字かな" + letters) for _ in range(rng.randint(1, 4)))
        if piece not in seen:
            seen.add(piece)
            vocabulary.append(piece)
    return vocabulary


def mask_alone(vocab_size: int, steps: int) -> None:
    import xgrammar

    print(f"2. the mask alone: a BPE-like vocabulary of {vocab_size:,} tokens, CPU, float32 logits")
    vocabulary = bpe_like_vocabulary(vocab_size - 1) + ["<|im_end|>"]
    started = time.perf_counter()
    info = xgrammar.TokenizerInfo(vocabulary, vocab_size=vocab_size, stop_token_ids=[vocab_size - 1])
    compiler = xgrammar.GrammarCompiler(info, max_threads=1)
    print(f"  tokenizer info: {time.perf_counter() - started:.2f} s (once per backend)")
    index = {token: number for number, token in enumerate(vocabulary)}
    caption = json.dumps(
        {
            "scene": "Ellie waves at Victor across the meadow while sprites circle above them",
            "background": "A green meadow at dusk with a low orange sun and long shadows",
            "characters": [{"name": "Ellie", "description": "a small girl in a red coat and yellow hat"}],
            "salient_objects": "a red kite, a wooden fence",
        }
    )
    grammars = {}
    started = time.perf_counter()
    from workers.vlm.constrained import _without_length_bounded_strings

    schema = json.dumps(_without_length_bounded_strings(CAPTION_JSON_SCHEMA))
    grammars["caption schema"] = (compiler.compile_json_schema(schema, any_whitespace=False), caption)
    print(f"  compile caption schema: {(time.perf_counter() - started) * 1e3:.0f} ms")
    started = time.perf_counter()
    grammars["detection, 7 names"] = (compiler.compile_grammar(detection_grammar(NAMES)), '["Ellie", "Mira", "Victor"]')
    print(f"  compile detection grammar: {(time.perf_counter() - started) * 1e3:.0f} ms")
    for name, (compiled, answer) in grammars.items():
        # The answer as tokens: the longest vocabulary piece at each point, as BPE would split it.
        tokens, position = [], 0
        while position < len(answer):
            for length in range(min(10, len(answer) - position), 0, -1):
                if answer[position : position + length] in index:
                    tokens.append(index[answer[position : position + length]])
                    position += length
                    break
        tokens.append(vocab_size - 1)
        for batch in (1, 16):
            logits = torch.randn(batch, vocab_size)
            fill, apply, accept = [], [], []
            for _ in range(max(1, steps // len(tokens))):
                rows = RowConstraints([compiled] * batch, vocab_size)
                for token in tokens:
                    started = time.perf_counter()
                    for row, matcher in enumerate(rows.matchers):
                        matcher.fill_next_token_bitmask(rows.bitmask, row)
                    filled = time.perf_counter()
                    xgrammar.apply_token_bitmask_inplace(logits, rows.bitmask)
                    applied = time.perf_counter()
                    for row in range(batch):
                        rows.accept(row, token)
                    fill.append(filled - started)
                    apply.append(applied - filled)
                    accept.append(time.perf_counter() - applied)
            parts = [statistics.median(part) / batch * 1e6 for part in (fill, apply, accept)]
            print(
                f"  {name:20s} batch {batch:2d}: {sum(parts):6.1f} µs per token per row "
                f"(fill {parts[0]:.1f}, apply {parts[1]:.1f}, accept {parts[2]:.1f}; {len(tokens)} tokens)"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small", "internvl"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=151_936)
    parser.add_argument("--mask-steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: less noise on a shared VM)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {device}")
    product_path(args.sizes, args.frames, args.batch_size, args.repeats)
    mask_alone(args.vocab_size, args.mask_steps)


if __name__ == "__main__":
    main()
