"""CLIP embedding throughput: naive one-at-a-time loop vs the product's batched path, same run.

    .venv/bin/python bench/embed_bench.py [--images 96] [--model ViT-B-32]

The model is the real ViT-B/32 architecture with random weights (speed does not depend on the
weights; nothing is downloaded). Inputs are 1920×1080 JPEGs (q90) of the demo world.
Naive: PIL open → preprocess → model(x[None]) per image. Product: `workers.vision.clip.embed_images`
(JPEG draft-mode decode, DataLoader worker processes, batches, inference mode).
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from workers.demo import DemoWorldConfig, plan_demo_world, render_shot_frame  # noqa: E402
from workers.vision.clip import ClipModelSpec, EmbeddingConfig, embed_images  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import open_clip

    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(args.model, pretrained=None)
    model.eval()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device)

    with tempfile.TemporaryDirectory(prefix="vive-embed-bench-") as tmp:
        config = DemoWorldConfig(seconds=args.images, width=1920, height=1080)
        items = []
        for index, plan in enumerate(plan_demo_world(config)[: args.images]):
            path = Path(tmp) / f"{index:05d}.jpg"
            render_shot_frame(plan, config).save(path, quality=90)
            items.append((index, path))

        # warm-up (allocations, first-call costs) for both paths
        with torch.inference_mode():
            model.encode_image(preprocess(Image.open(items[0][1]).convert("RGB"))[None].to(device))

        started = time.perf_counter()
        naive = []
        with torch.inference_mode():
            for _, path in items:
                x = preprocess(Image.open(path).convert("RGB"))[None].to(device)
                naive.append(torch.nn.functional.normalize(model.encode_image(x), dim=-1).cpu().numpy()[0])
        naive_s = time.perf_counter() - started

        result = embed_images(
            ClipModelSpec(model_name=args.model, pretrained=None),
            items,
            EmbeddingConfig(batch_size=args.batch_size, num_workers=args.workers, draft_decode=True),
            loaded=(model, preprocess),
        )
        product_s = result.seconds

    # The ceiling: the model alone on ready tensors, same batch and precision as the product path.
    from workers.vision.clip import _autocast

    batch = torch.randn(args.batch_size, 3, 224, 224, device=device)
    with torch.inference_mode(), _autocast(device, EmbeddingConfig()):
        model.encode_image(batch[:4])
        started = time.perf_counter()
        model.encode_image(batch)
        ceiling = args.batch_size / (time.perf_counter() - started)

    agreement = float(np.mean(np.sum(np.stack(naive) * result.vectors, axis=1)))
    print(f"machine: cores={os.cpu_count()} torch threads={torch.get_num_threads()} device={device}")
    print(f"{args.images} JPEGs 1920x1080, {args.model} (random weights)")
    print(f"naive   (one at a time):      {args.images / naive_s:7.2f} images/s")
    setup = f"batch {args.batch_size}, {args.workers} decode workers, draft JPEG"
    print(f"product ({setup}): {result.images_per_second:7.2f} images/s")
    print(f"ratio: {naive_s / product_s:.2f}x")
    print(f"ceiling (model alone, no decode, batch {args.batch_size}): {ceiling:7.2f} images/s")
    print(f"mean cosine(naive, product) = {agreement:.4f} (draft decode changes pixels slightly)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
