"""Test footage made on the spot (nothing is downloaded)."""

import io
import stat
import zipfile
from pathlib import Path

from PIL import Image

from tests.factories import png_bytes


def make_video(
    path: Path, *, seconds: int = 30, fps: int = 2, size: tuple[int, int] = (1920, 1080), codec: str = "libx264"
) -> Path:
    """A video (H.264 unless `codec` says otherwise) whose every second looks different (so sampled
    frames do not deduplicate); its container follows the path's suffix."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for index in range(seconds * fps):
            second = index // fps
            image = Image.new("RGB", size, ((second * 37) % 256, (second * 91) % 256, (second * 53 + 20) % 256))
            left = second * 50 % size[0]
            image.paste((255 - (second * 37) % 256, 40, 90), (left, 100, left + 200, 400))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def image_bytes(color=(10, 120, 200), size=(64, 48), fmt="PNG") -> bytes:
    return png_bytes(size, color=color, fmt=fmt)


def bomb_png(side: int) -> bytes:
    """A big blank image compresses to almost nothing."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG")
    return buffer.getvalue()
