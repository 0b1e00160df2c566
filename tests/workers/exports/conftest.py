"""Eight varied frames with real JPEGs: with and without characters, blank fields, unicode,
nested provenance whose keys differ per row, and every way a record can hand over its image."""

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from workers.exports import ExportRecord


def jpeg(index: int, size: tuple[int, int] = (48, 32)) -> bytes:
    image = Image.new("RGB", size, (30 * index % 255, 120, 200 - 20 * index))
    ImageDraw.Draw(image).rectangle((index * 4, 4, index * 4 + 12, 20), fill=(240, 10 * index, 40))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


class OneWayStream(io.RawIOBase):
    """A file object that cannot seek, like an HTTP body from remote storage."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def make_records(folder: Path) -> list[ExportRecord]:
    images = [jpeg(index) for index in range(8)]
    on_disk = folder / "frame-5.jpg"
    on_disk.write_bytes(images[5])
    specs = [
        dict(scene="Ana stirs a pot.", background="a small kitchen", characters=["Ana"], salient_objects="a pot"),
        dict(
            scene="Ana hands Bo a letter.",
            background="a rainy street",
            characters=["Ana", "Bo"],
            salient_objects="a letter, an umbrella",
            character_mentions=[{"name": "Ana", "description": "in a red scarf"}, {"name": "Bo"}],
        ),
        dict(scene="Rain falls on an empty square.", background="a town square", characters=[], salient_objects=""),
        dict(
            scene="Bo, Cy and Ana share a café crème.",
            background="a café terrace",
            characters=["Bo", "Cy", "Ana"],
            salient_objects="three cups",
        ),
        dict(scene="", background="a dark corridor", characters=[], salient_objects="a lamp"),
        dict(scene="Cy reads.", background="", characters=["Cy"], salient_objects="a book"),
        dict(scene="Ana runs.", background="a beach at dusk", characters=["Ana"], salient_objects="waves"),
        dict(scene="Bo sleeps.", background="a hammock", characters=["Bo"], salient_objects="a hat"),
    ]
    provenances = [
        {"project": "Demo", "asset_id": 1, "source_video": "film.mp4", "timestamp": 1.0, "judge": {"score": 4}},
        {"project": "Demo", "asset_id": 2, "pipeline": "finetuned", "adherence": {"parsed": True, "repairs": []}},
        {"project": "Demo", "asset_id": 3, "corrected": True, "review_votes": [1, 0, 1]},
        {"project": "Demo", "asset_id": 4, "prompt_versions": {"caption": "v2"}, "judge": {"score": 3.5}},
        {"project": "Demo", "asset_id": 5, "timestamp": None},
        {"project": "Demo", "asset_id": 6, "detector": "tiny-lora@3"},
        {"project": "Demo", "asset_id": 7, "captioner": "tiny"},
        {},
    ]
    sources = [
        lambda: images[0],  # bytes
        lambda: io.BytesIO(images[1]),  # a seekable file object
        lambda: bytearray(images[2]),
        lambda: OneWayStream(images[3]),  # cannot seek: spooled to learn its size
        lambda: images[4],
        lambda: open(on_disk, "rb"),  # a real file, as storage.open gives
        lambda: images[6],
        lambda: io.BytesIO(images[7]),
    ]
    return [
        ExportRecord(
            key=f"asset-{index + 1}",
            file_stem=f"{index + 1:06d}",
            image=source,
            image_ext=".jpeg" if index == 7 else ".jpg",
            provenance=provenance,
            **spec,
        )
        for index, (spec, provenance, source) in enumerate(zip(specs, provenances, sources, strict=True))
    ]


def image_bytes(record: ExportRecord) -> bytes:
    source = record.image()
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    with source:
        return source.read()


@pytest.fixture
def records(tmp_path) -> list[ExportRecord]:
    folder = tmp_path / "sources"
    folder.mkdir()
    return make_records(folder)
