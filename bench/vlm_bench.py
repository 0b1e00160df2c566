"""Detection throughput: the naive per-frame loop vs the product's path, same run, same outputs.

    .venv/bin/python bench/vlm_bench.py            # CPU, tiny Qwen2.5-VL (offline)
    python bench/vlm_bench.py --size 3b --frames 64  # on a GPU: real-size random weights (bf16)

The prompt has the paper's shape: 7 reference images (one per character, name + description)
+ instructions + the target frame; greedy decoding. Naive: one frame per `generate`, every image
read and resized again for every frame. Product: `TransformersBackend.generate` — the
shared prefix (reference images' vision pass + KV cache of all before the frame) computed once
and reused, frames batched by patch grid, references resized once to their own pixel budget.
The greedy outputs of both are compared frame by frame; the run fails loudly if they differ.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from workers.demo import DemoWorldConfig, generate_demo_world  # noqa: E402
from workers.vlm.backends import ModelSpec, PromptImages, TransformersBackend  # noqa: E402
from workers.vlm.prompts import CharacterCard, detection_prompt  # noqa: E402
from workers.vlm.tiny import build_tiny_qwen2_5_vl  # noqa: E402

REAL_SIZES = {
    # "small" exercises the real-size code path (vocab 151,936, random weights) on a CPU in seconds
    "small": dict(
        text=dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, rope_scaling={"type": "mrope", "mrope_section": [8, 12, 12]}),
        vision=dict(depth=2, hidden_size=128, intermediate_size=256, num_heads=4, out_hidden_size=256,
                    fullatt_block_indexes=[1]),
    ),
    "3b": dict(
        text=dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                  num_key_value_heads=2, rope_theta=1000000.0, tie_word_embeddings=True,
                  rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]}),
        vision=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                    fullatt_block_indexes=[7, 15, 23, 31]),
    ),
}  # fmt: skip


def build_backend(size: str, folder: Path, batch_size: int, budgets: dict) -> TransformersBackend:
    tiny = build_tiny_qwen2_5_vl(folder / "tiny-qwen")
    spec = ModelSpec(name=f"qwen2.5-vl-{size}", model=str(tiny), batch_size=batch_size, max_new_tokens=16, **budgets)
    if size == "tiny":
        return TransformersBackend(spec)
    from transformers import AutoProcessor, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    processor = AutoProcessor.from_pretrained(tiny)  # its token ids are set in the config below
    if size != "small":  # real Qwen2.5-VL pixel limits, so the 1344×756 frames keep their detail
        image_processor = processor.image_processor
        image_processor.min_pixels, image_processor.max_pixels = 56 * 56, 28 * 28 * 1280
        image_processor.size = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 1280}
    tiny_config = json.loads((tiny / "config.json").read_text())
    shape = REAL_SIZES[size]
    config = Qwen2_5_VLConfig(
        text_config={**shape["text"], "vocab_size": 151936},
        vision_config=shape["vision"],
        **{
            key: tiny_config[key]
            for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
        },
    )
    config._attn_implementation = "sdpa"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(config).to(torch.bfloat16 if device == "cuda" else torch.float32)
    model.generation_config.eos_token_id = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    return TransformersBackend.from_loaded(spec, model, processor)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="tiny", choices=["tiny", *REAL_SIZES])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    budgets = (
        {"reference_max_pixels": 112 * 112, "target_max_pixels": 224 * 224}
        if args.size in ("tiny", "small")
        else {"reference_max_pixels": 448 * 448, "target_max_pixels": 1344 * 756}
    )
    with tempfile.TemporaryDirectory(prefix="vive-vlm-bench-") as tmp:
        tmp = Path(tmp)
        world = generate_demo_world(
            DemoWorldConfig(seconds=args.frames, characters=7, width=1280, height=720, fps=1), tmp / "world"
        )
        cards = [CharacterCard(c.name, c.description, c.reference_paths[:1]) for c in world.characters]
        import av

        frames = []
        with av.open(str(world.video_path)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                path = tmp / f"frame{index:04d}.jpg"
                frame.to_image().save(path, quality=90)
                frames.append(path)
        prompts = [detection_prompt(cards, frame) for frame in frames[: args.frames]]

        backend = build_backend(args.size, tmp, args.batch_size, budgets)
        backend.generate(prompts[:2])  # warm-up

        # naive: one frame per generate, images re-read and re-resized for every frame
        started = time.perf_counter()
        naive = []
        backend.spec = ModelSpec(**{**backend.spec.__dict__, "batch_size": 1})
        for prompt in prompts:
            backend.images = PromptImages(**budgets)
            naive.extend(backend.generate_plain([prompt]))
        naive_s = time.perf_counter() - started

        backend.spec = ModelSpec(**{**backend.spec.__dict__, "batch_size": args.batch_size})
        backend.images = PromptImages(**budgets)
        started = time.perf_counter()
        product = backend.generate(prompts)
        product_s = time.perf_counter() - started

    same = sum(a.text == b.text for a, b in zip(naive, product, strict=True))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"size={args.size} device={device} frames={len(prompts)} batch={args.batch_size} prompt=7 refs + target")
    print(f"naive   (one frame per generate): {len(prompts) / naive_s:8.2f} frames/s")
    print(f"product (shared prefix computed once, batched): {len(prompts) / product_s:8.2f} frames/s")
    print(f"ratio: {naive_s / product_s:.2f}x   greedy outputs identical: {same}/{len(prompts)}")
    if same != len(prompts):
        raise SystemExit("outputs differ between the naive and the product path")


if __name__ == "__main__":
    main()
