"""Ingestion throughput on this machine: frames sampled from a 1080p video, and thumbnails.

Prints the naive baseline and the product's path measured in the same run, and their ratio.

    .venv/bin/python bench/ingest_bench.py [--seconds 30] [--fps 30]

Naive baseline (what a quick script does): decode every frame to a PIL image, keep one a
second, save it as JPEG, make a LANCZOS thumbnail and save it as WebP with default settings.
Product: `workers.media.video.sample_frames` — a decoder child process, threaded decoding, RGB
conversion only of sampled frames, JPEG + WebP thumbnail (BILINEAR with reducing gap, fast
WebP method), pixel hash; the subprocess start-up is included in its time.
"""

import argparse
import io
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
from PIL import Image  # noqa: E402

from workers.demo import DemoWorldConfig, generate_demo_world  # noqa: E402
from workers.media.assets import prepare_asset  # noqa: E402
from workers.media.video import FrameSamplingConfig, sample_frames  # noqa: E402


def naive_sample(path: Path, out: Path, every: float = 1.0) -> int:
    out.mkdir(parents=True, exist_ok=True)
    kept, next_time = 0, 0.0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            image = frame.to_image()
            if frame.time + 1e-6 >= next_time:
                image.save(out / f"{kept:06d}.jpg", quality=90)
                thumb = image.copy()
                thumb.thumbnail((256, 256), Image.Resampling.LANCZOS)
                thumb.save(out / f"{kept:06d}.webp")
                kept += 1
                next_time += every
    return kept


def naive_thumbnail(image: Image.Image) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    thumb = image.copy()
    thumb.thumbnail((256, 256), Image.Resampling.LANCZOS)
    thumb.save(io.BytesIO(), format="WEBP")


def timed(fn, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vive-bench-") as tmp:
        tmp = Path(tmp)
        print(f"Generating a {args.seconds} s 1920x1080 {args.fps} fps H.264 demo film …", flush=True)
        world = generate_demo_world(
            DemoWorldConfig(seconds=args.seconds, fps=args.fps, width=1920, height=1080), tmp / "world"
        )
        decoded_total = args.seconds * args.fps

        naive_s, naive_frames = timed(naive_sample, world.video_path, tmp / "naive")
        product_s, product_frames = timed(sample_frames, world.video_path, tmp / "product", FrameSamplingConfig())
        assert naive_frames == len(product_frames) == args.seconds, (naive_frames, len(product_frames))

        images = [Image.open(path).convert("RGB") for path in sorted((tmp / "naive").glob("*.jpg"))]
        naive_t, _ = timed(lambda: [naive_thumbnail(i) for i in images])
        product_t, _ = timed(lambda: [prepare_asset(i) for i in images])

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"machine: {platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()}")
    print(f"video: {args.seconds} s at {args.fps} fps, 1920x1080 ({decoded_total} frames decoded), sampled every 1 s")
    for label, seconds, sampled in (("naive:  ", naive_s, naive_frames), ("product:", product_s, len(product_frames))):
        rates = f"{sampled / seconds:7.2f} sampled frames/s ({decoded_total / seconds:6.1f} decoded/s)"
        print(f"frame sampling  {label} {rates}")
    print(f"frame sampling  ratio:   {naive_s / product_s:7.2f}x")
    print(f"stored JPEG + thumbnail naive:   {len(images) / naive_t:7.2f} images/s")
    print(f"stored JPEG + thumbnail product: {len(images) / product_t:7.2f} images/s (incl. pixel hash)")
    print(f"stored JPEG + thumbnail ratio:   {naive_t / product_t:7.2f}x")
    print(f"peak RSS: bench process {peak_mb:.0f} MB, largest child (decoder) {child_mb:.0f} MB")


if __name__ == "__main__":
    main()
