"""Turn a decoded picture into what an Asset stores: a JPEG, a small WebP thumbnail, a pixel hash."""

import hashlib
import io
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class AssetEncoding:
    jpeg_quality: int = 90
    thumbnail_side: int = 256
    thumbnail_quality: int = 75


@dataclass(frozen=True)
class PreparedAsset:
    sha256: str  # of the RGB pixels: the same picture re-encoded or re-uploaded hashes the same
    width: int
    height: int
    jpeg: bytes
    thumbnail_webp: bytes


def pixel_hash(image: Image.Image) -> str:
    digest = hashlib.sha256(f"{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def encode_jpeg(rgb: Image.Image, quality: int = AssetEncoding.jpeg_quality) -> bytes:
    """The JPEG an Asset stores of an RGB picture (4:2:0: colour at half resolution)."""
    jpeg = io.BytesIO()
    rgb.save(jpeg, format="JPEG", quality=quality, optimize=False)
    return jpeg.getvalue()


def prepare_asset(image: Image.Image, encoding: AssetEncoding = AssetEncoding()) -> PreparedAsset:
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    jpeg = encode_jpeg(rgb, encoding.jpeg_quality)
    scale = min(1.0, encoding.thumbnail_side / max(rgb.width, rgb.height))
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    # reducing_gap: box-reduce first, then a cheap bilinear pass (no full-size copy).
    thumb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0) if scale < 1.0 else rgb
    webp = io.BytesIO()
    thumb.save(webp, format="WEBP", quality=encoding.thumbnail_quality, method=0)
    return PreparedAsset(
        sha256=pixel_hash(rgb), width=rgb.width, height=rgb.height, jpeg=jpeg, thumbnail_webp=webp.getvalue()
    )
