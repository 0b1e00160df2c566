"""One exported frame, as the writers receive it, and the few ways to read its image.

A record carries its image as a zero-argument callable rather than bytes, so an export of 10,000
frames never holds more than one image at a time: the caller passes something like
`lambda: storage.open(name)` (a binary file object, copied in chunks) or
`lambda: storage.open(name).read()` (bytes).
"""

import io
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

# One rule for every format: a stem is used as a file name (all formats), a JSON key (kohya) and
# a webdataset sample key, which webdataset splits at its first dot — so no dots, no separators.
_STEM = re.compile(r"[A-Za-z0-9_-]{1,200}")
_EXT = re.compile(r"\.[a-z0-9]{1,8}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_COPY_CHUNK = 1024 * 1024
# A file object of unknown size is spooled to find its size (a tar header needs it first); it
# stays in memory up to this size and goes to a temporary file beyond it.
_SPOOL_IN_MEMORY = 8 * 1024 * 1024

ImageSource = Callable[[], bytes | BinaryIO]


def safe_file_stem(text: str) -> str:
    """A file stem that every format accepts, made from any text (an asset id, a name).

    Runs of other characters become one "-"; distinct inputs may meet, so keep ids in them.
    """
    stem = _UNSAFE.sub("-", text).strip("-")[:200]
    if not stem:
        raise ValueError(f"{text!r} has no character usable in a file name.")
    return stem


@dataclass(frozen=True, kw_only=True)
class ExportRecord:
    """A captioned frame: where its image comes from, the four caption fields and provenance.

    `characters` are the names the dense caption joins; `character_mentions` may carry the
    captioner's richer per-character dicts ({"name", "description"}), written only where a format
    keeps the structure. `provenance` is opaque here: any JSON-serialisable mapping.
    """

    key: str
    file_stem: str
    image: ImageSource
    scene: str
    background: str
    characters: Sequence[str] = ()
    salient_objects: str = ""
    character_mentions: Sequence[Mapping[str, object]] = ()
    provenance: Mapping[str, object] = field(default_factory=dict)
    image_ext: str = ".jpg"

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError("An export record needs a non-empty string key.")
        if not isinstance(self.file_stem, str) or not _STEM.fullmatch(self.file_stem):
            raise ValueError(
                f"Record {self.key!r}: file_stem {self.file_stem!r} must be 1-200 of A-Z a-z 0-9 _ - "
                "(no path separators, no dots); see safe_file_stem()."
            )
        if not isinstance(self.image_ext, str) or not _EXT.fullmatch(self.image_ext):
            raise ValueError(f"Record {self.key!r}: image_ext {self.image_ext!r} must look like '.jpg'.")
        if not callable(self.image):
            raise TypeError(f"Record {self.key!r}: image must be a zero-argument callable.")
        for name in ("scene", "background", "salient_objects"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"Record {self.key!r}: {name} must be a string.")
        # A bare string is a sequence of one-letter "names": the classic mistake, refused.
        if isinstance(self.characters, str) or not all(isinstance(name, str) for name in self.characters):
            raise TypeError(f"Record {self.key!r}: characters must be a list of names.")
        object.__setattr__(self, "characters", tuple(self.characters))
        object.__setattr__(self, "character_mentions", tuple(dict(m) for m in self.character_mentions))
        object.__setattr__(self, "provenance", dict(self.provenance))

    @property
    def image_name(self) -> str:
        return self.file_stem + self.image_ext

    def structured(self) -> dict[str, object]:
        """The four caption fields, as the captioner's schema names them."""
        return {
            "scene": self.scene,
            "background": self.background,
            "characters": list(self.characters),
            "salient_objects": self.salient_objects,
        }


def copy_image(record: ExportRecord, dest: BinaryIO) -> int:
    """Write the record's image to `dest` in chunks; returns the bytes written."""
    source = _open_image(record)
    if isinstance(source, bytes):
        return dest.write(source)
    with closing(source):
        written = 0
        while chunk := source.read(_COPY_CHUNK):
            written += dest.write(chunk)
        return written


@contextmanager
def sized_image(record: ExportRecord) -> Iterator[tuple[BinaryIO, int]]:
    """The image as a readable stream with its size known up front (a tar header needs it first)."""
    source = _open_image(record)
    if isinstance(source, bytes):
        yield io.BytesIO(source), len(source)
        return
    with closing(source):
        if _seekable(source):
            start = source.tell()
            size = source.seek(0, io.SEEK_END) - start
            source.seek(start)
            yield source, size
            return
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            shutil.copyfileobj(source, spool, _COPY_CHUNK)
            size = spool.tell()
            spool.seek(0)
            yield spool, size


def _open_image(record: ExportRecord) -> bytes | BinaryIO:
    source = record.image()
    if isinstance(source, bytearray | memoryview):
        return bytes(source)
    if not isinstance(source, bytes) and not hasattr(source, "read"):
        raise TypeError(f"Record {record.key!r}: image() returned {type(source).__name__}, not bytes or a file.")
    return source


def _seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError):
        return False
