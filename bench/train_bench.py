"""Detector SFT throughput: the naive LoRA step vs the product's recipe, same run, same examples.

    .venv/bin/python bench/train_bench.py                 # CPU, tiny Qwen2.5-VL (offline)
    .venv/bin/python bench/train_bench.py --size small    # CPU, real vocabulary, small layers
    python bench/train_bench.py --size 3b                 # on a GPU: Qwen2.5-VL-3B shape, random weights (bf16)

Examples have the paper's prompt shape: 7 reference images (one per character, name +
description) + instructions + the target frame, answer = the sorted JSON list of names.

Naive (the step of `shared/tools/gpu_baseline_vlm.py`): every step runs the full prompts with
their pixels through the whole model — vision tower included, its MLPs carrying LoRA too because
the adapter targets layers by name — with the loss on every token, and gradient checkpointing
at real size. Product (`workers.train.recipe`): LoRA on the language model only, the frozen vision
tower's features computed once per image, the references + instructions computed once per
micro-batch (shared-prefix KV with gradients), logits only where an answer token is predicted,
no gradient checkpointing while memory allows, batches of equal-length prompts. Epoch 1 fills the
feature cache; later epochs show the steady state. Samples/s count training examples and come from
the median step time, so that a neighbour's burst on a shared machine does not decide the figure.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from workers.demo import DemoWorldConfig, generate_demo_world, plan_demo_world, render_shot_frame  # noqa: E402
from workers.train import SFTConfig, TrainExample, TrainingCallbacks  # noqa: E402
from workers.train.data import answer_text  # noqa: E402
from workers.train.recipe import DetectorSFTRecipe  # noqa: E402
from workers.vlm.backends import PromptImages  # noqa: E402
from workers.vlm.prompts import CharacterCard, detection_prompt  # noqa: E402
from workers.vlm.tiny import build_tiny_qwen2_5_vl  # noqa: E402

REAL_SIZES = {
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
# per size: frame size, reference size, pixel budgets, naive batch (the baseline's), product batch
SHAPES = {
    "tiny": dict(frame=(224, 128), reference=64, budgets=(56 * 56, 224 * 128), naive_batch=2, batch=16),
    "small": dict(frame=(448, 252), reference=112, budgets=(112 * 112, 448 * 252), naive_batch=4, batch=8),
    "3b": dict(frame=(1344, 756), reference=448, budgets=(448 * 448, 1344 * 756), naive_batch=4, batch=4),
}
BASELINE_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(size: str, tiny: Path):
    """(model, processor): the tiny checkpoint, or a real-size shape with random weights (nothing downloaded)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor, Qwen2_5_VLConfig

    dtype = torch.bfloat16 if DEVICE.type == "cuda" else torch.float32
    processor = AutoProcessor.from_pretrained(tiny)  # its token ids are set in the config below
    if size == "tiny":
        return AutoModelForImageTextToText.from_pretrained(tiny, dtype=dtype).to(DEVICE), processor
    from transformers import Qwen2_5_VLForConditionalGeneration

    if size == "3b":  # real Qwen2.5-VL pixel limits, so the 1344×756 frames keep their detail
        processor.image_processor.min_pixels, processor.image_processor.max_pixels = 56 * 56, 28 * 28 * 1280
        processor.image_processor.size = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 1280}
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
    with torch.device(DEVICE):
        model = Qwen2_5_VLForConditionalGeneration(config).to(dtype)
    return model, processor


def detection_examples(size: str, count: int, folder: Path) -> tuple[list[CharacterCard], list[TrainExample]]:
    shape = SHAPES[size]
    width, height = shape["frame"]
    config = DemoWorldConfig(
        seconds=count, fps=1, characters=7, width=width, height=height, reference_size=shape["reference"]
    )
    world = generate_demo_world(config, folder / "world")
    examples = []
    for plan in plan_demo_world(config):
        path = folder / f"frame{plan.shot.second:04d}.png"
        render_shot_frame(plan, config).save(path)
        examples.append(TrainExample(str(plan.shot.second), path, plan.shot.characters))
    roster = [CharacterCard(c.name, c.description, c.reference_paths[:1]) for c in world.characters]
    return roster, examples


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def naive_samples_per_second(size, tiny, roster, examples, steps: int) -> float:
    from peft import LoraConfig, get_peft_model

    model, processor = build_model(size, tiny)
    model = get_peft_model(model.train(), LoraConfig(r=16, lora_alpha=32, target_modules=BASELINE_TARGETS))
    if size != "tiny":
        model.activation_checkpointing_enable({"use_reentrant": False})
        model.enable_input_require_grads()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch_size = SHAPES[size]["naive_batch"]
    reference_pixels, target_pixels = SHAPES[size]["budgets"]

    def batch(start: int) -> dict:
        chosen = [examples[(start + offset) % len(examples)] for offset in range(batch_size)]
        prompts = [detection_prompt(roster, example.image_path) for example in chosen]
        texts = [
            processor.apply_chat_template(p.messages, add_generation_prompt=True, tokenize=False)
            + answer_text(example.names)
            + "<|im_end|>"
            for p, example in zip(prompts, chosen, strict=True)
        ]
        images = [PromptImages(reference_pixels, target_pixels).load(p) for p in prompts]  # read every step
        inputs = processor(text=texts, images=images, padding=True, return_tensors="pt").to(DEVICE)
        inputs["labels"] = inputs["input_ids"].clone()
        return inputs

    def step(start: int) -> None:
        loss = model(**batch(start)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(0)  # warm-up
    seconds = []
    for index in range(1, steps + 1):
        sync()
        started = time.perf_counter()
        step(index * batch_size)
        sync()
        seconds.append(time.perf_counter() - started)
    return batch_size / statistics.median(seconds)


def product_samples_per_second(size, tiny, roster, examples, folder: Path, **levers) -> tuple[float, float, int]:
    """(epoch 1 samples/s, later epochs samples/s, batch size) of the recipe's own steps; `levers`
    turn speed settings of SFTConfig off to see what each is worth."""
    model, processor = build_model(size, tiny)
    reference_pixels, target_pixels = SHAPES[size]["budgets"]
    config = SFTConfig(
        base_model=str(tiny),
        output_dir=str(folder / f"run{len(levers)}{sorted(levers)}"),
        epochs=3,
        batch_size=SHAPES[size]["batch"],
        reference_max_pixels=reference_pixels,
        target_max_pixels=target_pixels,
        eval_before_training=False,
        **levers,
    )
    steps = []
    recipe = DetectorSFTRecipe(config, roster, examples, callbacks=TrainingCallbacks(on_step=steps.append))
    recipe.setup(model=model, processor=processor)
    recipe.train()
    recipe.cleanup()
    per_epoch = recipe.steps_per_epoch
    # every step is a full batch: all frames have one size and --examples is a multiple of the batch
    first = config.batch_size / statistics.median(step.seconds for step in steps[:per_epoch])
    later = config.batch_size / statistics.median(step.seconds for step in steps[per_epoch:])
    return first, later, config.batch_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="tiny", choices=list(SHAPES))
    parser.add_argument("--examples", type=int, default=96, help="a multiple of the batch sizes")
    parser.add_argument("--naive-steps", type=int, default=8)
    parser.add_argument("--ablations", action="store_true", help="also run the recipe with one speed lever off")
    args = parser.parse_args()
    ablations = {"no shared prefix": {"share_prefix": False}, "no feature cache": {"cache_vision_features": False}}
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="vive-train-bench-") as tmp:
        tmp = Path(tmp)
        tiny = build_tiny_qwen2_5_vl(tmp / "tiny-qwen")
        roster, examples = detection_examples(args.size, args.examples, tmp)
        naive = naive_samples_per_second(args.size, tiny, roster, examples, args.naive_steps)
        if DEVICE.type == "cuda":
            torch.cuda.empty_cache()  # the naive model is gone: give its memory to the product's
        first, later, batch = product_samples_per_second(args.size, tiny, roster, examples, tmp)
        ablated = {
            name: product_samples_per_second(args.size, tiny, roster, examples, tmp, **levers)[1]
            for name, levers in (ablations.items() if args.ablations else [])
        }
    device = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu"
    print(f"size={args.size} device={device} examples={len(examples)} prompt=7 refs + target")
    print(f"naive   (baseline step, batch {SHAPES[args.size]['naive_batch']}): {naive:8.2f} samples/s")
    print(f"product (recipe, batch {batch}), epoch 1 (feature cache filling): {first:8.2f} samples/s")
    print(f"product (recipe, batch {batch}), epochs 2-3: {later:8.2f} samples/s")
    for name, samples_per_second in ablated.items():
        print(f"product, {name}, epochs 2-3: {samples_per_second:8.2f} samples/s")
    whole_run = 3 / (1 / first + 2 / later)
    print(f"ratio: epochs 2-3 {later / naive:.2f}x, epoch 1 {first / naive:.2f}x, 3-epoch run {whole_run / naive:.2f}x")


if __name__ == "__main__":
    main()
