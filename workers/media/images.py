"""Decode untrusted image bytes safely and re-encode them.

Re-encoding is the defence against polyglots (an image header followed by HTML or a script):
only pixels survive. Decompression bombs are refused from the header, before any pixel is
decoded, and Pillow's own bomb warning is turned into a refusal.
"""

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


class ImageRejected(ValueError):
    """An upload that is not an acceptable image; `code` is stable, the message is for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    allowed_formats: frozenset[str] = ALLOWED_FORMATS


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image
    source_format: str
    width: int
    height: int


def decode_image(data: bytes, limits: ImageLimits = ImageLimits()) -> DecodedImage:
    """Decode, verify and orient an uploaded image, or raise ImageRejected saying why."""
    if len(data) == 0:
        raise ImageRejected("empty", "The file is empty.")
    if len(data) > limits.max_bytes:
        raise ImageRejected("too_large", f"The file is {len(data):,} bytes; the limit is {limits.max_bytes:,}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            source_format = probe.format or "unknown"
            if source_format not in limits.allowed_formats:
                allowed = ", ".join(sorted(limits.allowed_formats))
                raise ImageRejected("format", f"{source_format} images are not accepted; use one of {allowed}.")
            width, height = probe.size
            if width * height > limits.max_pixels:
                raise ImageRejected(
                    "too_many_pixels",
                    f"The image is {width}×{height} = {width * height:,} pixels; "
                    f"the limit is {limits.max_pixels:,} (possible decompression bomb).",
                )
            probe.verify()  # structure and checksums; the object is unusable afterwards
            image = Image.open(io.BytesIO(data))
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(
            "too_many_pixels", f"The image is too large to decode safely (possible decompression bomb): {exc}"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected("not_an_image", "The file is not an image this app can read.") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected("corrupt", f"The image is truncated or corrupt: {exc}") from exc

    image = ImageOps.exif_transpose(image)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    return DecodedImage(image=image, source_format=source_format, width=image.width, height=image.height)


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
