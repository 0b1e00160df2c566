"""Probe videos and sample frames every N seconds — always in a child process.

FFmpeg parses untrusted containers in C: a crafted file can crash or hang it. The parent only
starts `python -m workers.media.video …`, enforces a timeout and reads JSON lines back, so a bad
video marks one upload unreadable and the worker survives.

Only local files are demuxed: the container is recognised from its magic bytes first (so a
playlist renamed .mp4 never reaches FFmpeg's format probing), the demuxer is named explicitly,
and `protocol_whitelist=file` forbids network or other protocols inside the container.
"""

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

# magic → the demuxer FFmpeg must use for it
_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"}
ALLOWED_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "prores", "mjpeg", "mpeg2video"})
MAX_DIMENSION = 8192


class VideoRejected(ValueError):
    """Not a video this app accepts (wrong container, playlist, unsupported codec, …)."""


class VideoUnreadable(RuntimeError):
    """The decoder crashed, hung or failed on the file."""


@dataclass(frozen=True)
class VideoInfo:
    container: str
    codec: str
    width: int
    height: int
    duration_seconds: float
    fps: float


@dataclass(frozen=True)
class FrameSamplingConfig:
    every_seconds: float = 1.0
    max_frames: int = 50_000
    max_duration_seconds: float = 6 * 3600
    jpeg_quality: int = 90
    thumbnail_side: int = 256
    probe_timeout_seconds: float = 30.0
    decode_timeout_seconds: float = 3600.0
    decoder_module: str = "workers.media.video"  # tests swap in decoders that crash or hang

    def __post_init__(self) -> None:
        if not 0.04 <= self.every_seconds <= 3600:
            raise ValueError("every_seconds must be between 0.04 and 3600")


@dataclass(frozen=True)
class SampledFrame:
    index: int
    timestamp_seconds: float
    sha256: str
    width: int
    height: int
    jpeg_path: Path
    thumbnail_path: Path


def sniff_container(path: Path) -> str | None:
    """The demuxer for a file from its first bytes, or None if it is no accepted video container."""
    with open(path, "rb") as handle:
        head = handle.read(12)
    if len(head) >= 8 and head[4:8] in _MP4_BOXES:
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    return None


# ---------------------------------------------------------------- parent side (the worker process)


def _run_child(args: list[str], config: FrameSamplingConfig, timeout: float, on_line: Callable[[dict], None]) -> None:
    """Run the decoder child; a watchdog kills it at the deadline even if it prints nothing."""
    command = [sys.executable, "-m", config.decoder_module, *args]
    with tempfile.TemporaryFile(mode="w+") as stderr_file:  # a file, not a pipe: FFmpeg's chatter can't block it
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr_file, text=True)
        timed_out = threading.Event()

        def kill_at_deadline() -> None:
            timed_out.set()
            process.kill()

        watchdog = threading.Timer(timeout, kill_at_deadline)
        watchdog.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:  # one JSON object per line
                if line.strip():
                    on_line(json.loads(line))
            process.wait()
        except json.JSONDecodeError as exc:
            process.kill()
            process.wait()
            raise VideoUnreadable("The decoder produced garbled output.") from exc
        finally:
            watchdog.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr_file.seek(0)
        stderr = stderr_file.read().strip()
    if timed_out.is_set():
        raise VideoUnreadable(f"The decoder took longer than {timeout:.0f} s; the video was given up.")
    if process.returncode < 0:
        name = signal.Signals(-process.returncode).name
        raise VideoUnreadable(f"The decoder crashed on this file ({name}).")
    last_line = stderr.splitlines()[-1] if stderr else ""
    if process.returncode == 2:  # the child's code for "refused"
        raise VideoRejected(last_line or "Not an accepted video.")
    if process.returncode != 0:
        raise VideoUnreadable(last_line or f"The decoder failed (exit {process.returncode}).")


def probe_video(path: Path, config: FrameSamplingConfig = FrameSamplingConfig()) -> VideoInfo:
    if sniff_container(path) is None:
        raise VideoRejected("Not an MP4/MOV/MKV/WebM video (unrecognised file header).")
    found: list[dict] = []
    _run_child(["probe", str(path)], config, config.probe_timeout_seconds, found.append)
    if not found:
        raise VideoUnreadable("The decoder returned no information.")
    info = VideoInfo(**found[-1])
    if info.duration_seconds > config.max_duration_seconds:
        limit = config.max_duration_seconds
        raise VideoRejected(f"The video lasts {info.duration_seconds:.0f} s; the limit is {limit:.0f} s.")
    return info


def sample_frames(
    path: Path,
    out_dir: Path,
    config: FrameSamplingConfig = FrameSamplingConfig(),
    on_frame: Callable[[SampledFrame], None] | None = None,
) -> list[SampledFrame]:
    """Write one JPEG + WebP thumbnail per sampled frame into out_dir and return them in order."""
    frames: list[SampledFrame] = []

    def collect(record: dict) -> None:
        frame = SampledFrame(
            index=record["index"],
            timestamp_seconds=record["timestamp_seconds"],
            sha256=record["sha256"],
            width=record["width"],
            height=record["height"],
            jpeg_path=out_dir / record["jpeg"],
            thumbnail_path=out_dir / record["thumbnail"],
        )
        frames.append(frame)
        if on_frame is not None:
            on_frame(frame)

    args = [
        "extract", str(path), str(out_dir),
        "--every", str(config.every_seconds), "--max-frames", str(config.max_frames),
        "--jpeg-quality", str(config.jpeg_quality), "--thumbnail-side", str(config.thumbnail_side),
    ]  # fmt: skip
    _run_child(args, config, config.decode_timeout_seconds, collect)
    return frames


# ---------------------------------------------------------------- child side (the decoder process)


def _open(path: Path):
    import av

    container_format = sniff_container(path)
    if container_format is None:
        raise VideoRejected("Not an MP4/MOV/MKV/WebM video (unrecognised file header).")
    try:
        container = av.open(str(path), format=container_format, options={"protocol_whitelist": "file"})
    except av.FFmpegError as exc:
        raise VideoRejected(f"Not a readable video: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise VideoRejected("The file has no video stream.")
    stream = container.streams.video[0]
    codec = stream.codec_context.name
    if codec not in ALLOWED_CODECS:
        container.close()
        raise VideoRejected(f"Video codec {codec!r} is not accepted.")
    if not (0 < stream.codec_context.width <= MAX_DIMENSION and 0 < stream.codec_context.height <= MAX_DIMENSION):
        container.close()
        raise VideoRejected("The video's frame size is out of range.")
    return container, stream


def _probe(path: Path) -> dict:
    container, stream = _open(path)
    with container:
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        if not duration and container.duration:
            duration = container.duration / 1_000_000
        fps = float(stream.average_rate) if stream.average_rate else 0.0
        return asdict(
            VideoInfo(
                container=container.format.name,
                codec=stream.codec_context.name,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                duration_seconds=round(duration, 3),
                fps=round(fps, 3),
            )
        )


def _iter_sampled(path: Path, every_seconds: float, max_frames: int) -> Iterator[tuple[float, object]]:
    """(timestamp, av.VideoFrame) for the first frame at or after each multiple of every_seconds."""
    container, stream = _open(path)
    stream.thread_type = "AUTO"
    with container:
        next_index = sampled = 0
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            # A frame at 0.9999999 s stands for the 1 s mark: allow a microsecond of rounding.
            if frame.time + 1e-6 < next_index * every_seconds:
                continue
            yield round(float(frame.time), 6), frame
            sampled += 1
            next_index = int((frame.time + 1e-6) // every_seconds) + 1
            if sampled >= max_frames:
                return


def _extract(path: Path, out_dir: Path, every: float, max_frames: int, jpeg_quality: int, thumbnail_side: int) -> None:
    from workers.media.assets import AssetEncoding, prepare_asset

    encoding = AssetEncoding(jpeg_quality=jpeg_quality, thumbnail_side=thumbnail_side)
    out_dir.mkdir(parents=True, exist_ok=True)
    for count, (timestamp, frame) in enumerate(_iter_sampled(path, every, max_frames)):
        prepared = prepare_asset(frame.to_image(), encoding)
        jpeg_name, thumb_name = f"frame_{count:06d}.jpg", f"frame_{count:06d}.webp"
        (out_dir / jpeg_name).write_bytes(prepared.jpeg)
        (out_dir / thumb_name).write_bytes(prepared.thumbnail_webp)
        record = {
            "index": count,
            "timestamp_seconds": timestamp,
            "sha256": prepared.sha256,
            "width": prepared.width,
            "height": prepared.height,
            "jpeg": jpeg_name,
            "thumbnail": thumb_name,
        }
        print(json.dumps(record), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Probe a video or sample its frames (runs as a child process).")
    sub = parser.add_subparsers(dest="command", required=True)
    probe = sub.add_parser("probe")
    probe.add_argument("path", type=Path)
    extract = sub.add_parser("extract")
    extract.add_argument("path", type=Path)
    extract.add_argument("out_dir", type=Path)
    extract.add_argument("--every", type=float, default=1.0)
    extract.add_argument("--max-frames", type=int, default=50_000)
    extract.add_argument("--jpeg-quality", type=int, default=90)
    extract.add_argument("--thumbnail-side", type=int, default=256)
    args = parser.parse_args(argv)
    try:
        if args.command == "probe":
            print(json.dumps(_probe(args.path)), flush=True)
        else:
            _extract(args.path, args.out_dir, args.every, args.max_frames, args.jpeg_quality, args.thumbnail_side)
    except VideoRejected as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 — reported to the parent as "unreadable"
        print(f"The video could not be decoded: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
