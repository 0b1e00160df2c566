"""CLIP embedding throughput on the path a Celery worker runs, against the naive loop and the model alone.

    .venv/bin/python bench/embed_bench.py [--images 192] [--repeats 3] [--grain 8] [--decode-threads 0]

The model is the real ViT-B/32 architecture with random weights (speed does not depend on the
weights; nothing is downloaded), seeded so every process builds the same one. Inputs are 1920×1080
JPEGs (q90) of the demo world; `--grain` adds film grain so files and decode cost are those of
photographed frames (flat cartoon frames decode 2–3× faster). Three figures, each repeated:

- naive: PIL open → preprocess → model(x[None]) per image, full decode, float32 — one at a time.
- ceiling: the model alone on ready-made tensors, same batch and precision as the worker path
  (what QUALITY.md's "≥ 90 % of the model-alone ceiling" is measured against).
- worker: the embed job's own function, `apps.curation.handlers.embed_files`, with the deployed
  settings (EMBED_BATCH_SIZE, EMBED_NUM_WORKERS), called in a *daemonic* child process forked from
  a parent that has not run torch — what a Celery prefork child is — so decoding there cannot
  use processes; it uses the job's decode threads. `--decode-threads 0` is the path the job took
  before (one image at a time in a prefork child). Timed twice per child: the first call is what
  a job gets (its freshly loaded model pays oneDNN's first-call set-up), the second the steady state.
"""

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vivecaption_site.settings.dev")

SEED = 0


def _worker_path(model_name: str, items: list, overrides: dict, torch_threads: int | None, results) -> None:
    """In the daemonic child: Django set up as a worker's is, then the embed job's own function."""
    try:
        import django

        django.setup()
        from django.conf import settings

        for name, value in overrides.items():
            setattr(settings, name, value)
        import torch

        from apps.curation.handlers import embed_files, embedding_config
        from workers.vision.clip import ClipModelSpec

        if torch_threads:
            torch.set_num_threads(torch_threads)
        from workers.vision.clip import load_clip, resolve_device

        torch.manual_seed(SEED)  # the same random weights as the parent's model
        spec = ClipModelSpec(model_name=model_name, pretrained=None)
        loaded = load_clip(spec, resolve_device(embedding_config().device))
        # A job loads its model and embeds once: its first forward passes pay oneDNN's set-up.
        # The second call, same process and model, is the steady state of a long job.
        result = embed_files(spec, items, loaded=loaded)
        warm = embed_files(spec, items, loaded=loaded)
        results.put(
            {
                "daemon": multiprocessing.current_process().daemon,
                "config": embedding_config(),
                "torch_threads": torch.get_num_threads(),
                "seconds": result.seconds,
                "warm_seconds": warm.seconds,
                "vectors": result.vectors,
                "decode_threads": result.decode_threads,
                "failed": len(result.failed),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    except BaseException as exc:  # noqa: BLE001 — shown by the parent
        results.put({"error": f"{type(exc).__name__}: {exc}"})


def worker_path(model_name: str, items: list, overrides: dict, torch_threads: int | None) -> dict:
    context = multiprocessing.get_context("forkserver")  # children forked from a clean parent
    results = context.Queue()
    child = context.Process(
        target=_worker_path, args=(model_name, items, overrides, torch_threads, results), daemon=True
    )
    child.start()
    outcome = results.get(timeout=1800)
    child.join(timeout=60)
    if "error" in outcome:
        raise SystemExit(f"worker path failed: {outcome['error']}")
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument(
        "--grain", type=float, default=0.0, help="film grain (std, levels): photo-like JPEG sizes and decode cost"
    )
    parser.add_argument("--decode-threads", type=int, help="override EMBED_NUM_WORKERS (default: the setting)")
    parser.add_argument("--batch-size", type=int, help="override EMBED_BATCH_SIZE (default: the setting)")
    parser.add_argument("--torch-threads", type=int, help="torch intra-op threads in the worker (default: torch's)")
    args = parser.parse_args()
    overrides = {}
    if args.decode_threads is not None:
        overrides["EMBED_NUM_WORKERS"] = args.decode_threads
    if args.batch_size is not None:
        overrides["EMBED_BATCH_SIZE"] = args.batch_size

    import numpy as np
    import open_clip
    import torch
    from PIL import Image

    from workers.demo import DemoWorldConfig, plan_demo_world, render_shot_frame
    from workers.vision.clip import EmbeddingConfig, _autocast

    with tempfile.TemporaryDirectory(prefix="vive-embed-bench-") as tmp:
        config = DemoWorldConfig(seconds=args.images, width=1920, height=1080)
        items = []
        grain = np.random.default_rng(SEED)
        for index, plan in enumerate(plan_demo_world(config)[: args.images]):
            path = Path(tmp) / f"{index:05d}.jpg"
            frame = render_shot_frame(plan, config)
            if args.grain:
                pixels = np.asarray(frame, dtype=np.float32) + grain.normal(0, args.grain, (1080, 1920, 3))
                frame = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            frame.save(path, quality=90)
            items.append((index, path))
        jpeg_kb = sum(path.stat().st_size for _, path in items) / len(items) / 1024

        # The first worker run happens before this process touches a model (and shows the settings).
        runs = [worker_path(args.model, items, overrides, args.torch_threads)]
        batch_size = runs[0]["config"].batch_size

        torch.manual_seed(SEED)
        model, _, preprocess = open_clip.create_model_and_transforms(args.model, pretrained=None)
        model.eval()
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = model.to(device)
        with torch.inference_mode():  # warm-up (allocations, first-call costs)
            model.encode_image(preprocess(Image.open(items[0][1]).convert("RGB"))[None].to(device))

        def naive_run() -> tuple[float, np.ndarray]:
            started = time.perf_counter()
            vectors = []
            with torch.inference_mode():
                for _, path in items:
                    x = preprocess(Image.open(path).convert("RGB"))[None].to(device)
                    vectors.append(torch.nn.functional.normalize(model.encode_image(x), dim=-1).cpu().numpy()[0])
            return time.perf_counter() - started, np.stack(vectors)

        ready = [preprocess(Image.open(path).convert("RGB")) for _, path in items]
        batches = [
            torch.stack(ready[start : start + batch_size]).to(device) for start in range(0, len(ready), batch_size)
        ]

        def ceiling_run() -> float:
            started = time.perf_counter()
            with torch.inference_mode(), _autocast(device, EmbeddingConfig()):
                for batch in batches:
                    torch.nn.functional.normalize(model.encode_image(batch).float(), dim=-1).cpu()
            return time.perf_counter() - started

        with torch.inference_mode(), _autocast(device, EmbeddingConfig()):
            model.encode_image(batches[0][:4])  # warm-up at the batch's precision
        naive_s, ceiling_s = [], []
        for repeat in range(args.repeats):
            seconds, naive_vectors = naive_run()
            naive_s.append(seconds)
            ceiling_s.append(ceiling_run())
            if repeat:
                runs.append(worker_path(args.model, items, overrides, args.torch_threads))
        ceiling_s.append(ceiling_run())

    n = len(items)
    worker_s = [run["seconds"] for run in runs]
    warm_s = [run["warm_seconds"] for run in runs]
    first = runs[0]
    cosines = np.sum(naive_vectors * first["vectors"], axis=1)

    def rates(seconds: list[float]) -> str:
        values = sorted(n / s for s in seconds)
        return f"{statistics.median(values):6.2f} img/s (runs: {', '.join(f'{v:.1f}' for v in values)})"

    worker_rate = statistics.median(n / s for s in worker_s)
    naive_rate = statistics.median(n / s for s in naive_s)
    ceiling_rate = statistics.median(n / s for s in ceiling_s)
    best_ceiling = max(n / s for s in ceiling_s)
    print(f"machine: cores={os.cpu_count()} device={device} bf16={'yes' if _autocast_on(device) else 'no'}")
    print(
        f"{n} JPEGs 1920x1080 q90 (mean {jpeg_kb:.0f} KiB, grain {args.grain:g}), {args.model} "
        f"(random weights, seed {SEED}), {args.repeats} repeats"
    )
    print(f"naive   (one at a time, full decode, fp32):   {rates(naive_s)}")
    print(f"ceiling (model alone, ready tensors, batch {batch_size}): {rates(ceiling_s)}")
    print(
        f"worker  (embed_files in a daemonic child: batch {first['config'].batch_size}, "
        f"{first['config'].num_workers} decode threads, {first['decode_threads']} used, "
        f"torch threads {first['torch_threads']}, daemon={first['daemon']}): {rates(worker_s)}"
    )
    print(f"worker, warm (a second call in the same child):          {rates(warm_s)}")
    print(f"worker / naive:   {worker_rate / naive_rate:.2f}x")
    warm_rate = statistics.median(n / s for s in warm_s)
    share, best_share = worker_rate / ceiling_rate, worker_rate / best_ceiling
    warm_share = warm_rate / ceiling_rate
    print(f"worker / ceiling: {share:.0%} (of the best ceiling run: {best_share:.0%}); warm: {warm_share:.0%}")
    print(f"cosine(naive, worker): mean {cosines.mean():.4f}, min {cosines.min():.4f} (draft decode + bf16)")
    print(
        f"peak RSS: worker child {first['peak_rss_mb']:.0f} MB, bench process "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


def _autocast_on(device) -> bool:
    from workers.vision.clip import EmbeddingConfig, _autocast

    return type(_autocast(device, EmbeddingConfig())).__name__ == "autocast"


if __name__ == "__main__":
    main()
