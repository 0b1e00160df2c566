import io

import pytest
from PIL import Image

from tests.factories import png_bytes
from workers.media.images import ImageLimits, ImageRejected, decode_image, encode_png


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_allowed_formats_decode(fmt):
    decoded = decode_image(png_bytes((40, 30), fmt=fmt))
    assert (decoded.width, decoded.height, decoded.source_format) == (40, 30, fmt)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_formats_outside_the_allow_list_are_refused(fmt):
    with pytest.raises(ImageRejected) as excinfo:
        decode_image(png_bytes(fmt=fmt))
    assert excinfo.value.code == "format"
    assert fmt in excinfo.value.message


def test_non_image_is_refused():
    with pytest.raises(ImageRejected) as excinfo:
        decode_image(b"%PDF-1.7 not an image at all")
    assert excinfo.value.code == "not_an_image"


def test_empty_file_is_refused():
    with pytest.raises(ImageRejected, match="empty"):
        decode_image(b"")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_refused(fmt):
    data = png_bytes((64, 64), fmt=fmt)
    with pytest.raises(ImageRejected) as excinfo:
        decode_image(data[: len(data) // 2])
    assert excinfo.value.code in {"corrupt", "not_an_image"}


def test_pixel_limit_is_checked_from_the_header():
    big = png_bytes((300, 300))
    with pytest.raises(ImageRejected) as excinfo:
        decode_image(big, ImageLimits(max_pixels=300 * 300 - 1))
    assert excinfo.value.code == "too_many_pixels"
    assert "90,000" in excinfo.value.message


@pytest.mark.parametrize("side", [40, 60])  # 1600 px: between 1× and 2× the limit; 3600 px: above 2×
def test_pillow_bomb_warning_and_error_are_refusals(monkeypatch, side):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageRejected) as excinfo:
        decode_image(png_bytes((side, side)), ImageLimits(max_pixels=10**9))
    assert excinfo.value.code == "too_many_pixels"


def test_byte_limit():
    with pytest.raises(ImageRejected) as excinfo:
        decode_image(png_bytes(), ImageLimits(max_bytes=10))
    assert excinfo.value.code == "too_large"


def test_polyglot_is_reencoded_to_pixels_only():
    polyglot = png_bytes() + b"<html><script>alert('x')</script></html>"
    decoded = decode_image(polyglot)
    reencoded = encode_png(decoded.image)
    assert b"<script" not in reencoded
    assert Image.open(io.BytesIO(reencoded)).format == "PNG"


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    decoded = decode_image(buffer.getvalue())
    assert (decoded.width, decoded.height) == (20, 40)
