"""The export formats, one writer class each, found by name in `FORMATS`.

Layouts, relative to the export folder (images keep their bytes; `<stem>` is the record's file_stem):

- `jsonl`: `images/<stem>.jpg` and `captions.jsonl`, one structured object per frame: key,
  image_path, scene, background, characters, character_mentions, salient_objects, provenance.
- `dense`: `images/<stem>.jpg` and `captions.jsonl` of {key, image_path, caption}, the caption from
  the dense template. image_path/caption is musubi-tuner's `image_jsonl_file` shape; provenance
  stays in the structured formats.
- `hf`: a Hugging Face `imagefolder`, `train/<stem>.jpg` and `train/metadata.jsonl` with file_name
  (relative to the metadata file), text (the dense caption), key, the four fields (characters as a
  list of names), and character_mentions and provenance as JSON strings: nested dicts whose keys
  vary from row to row break Arrow's type inference, a string column never does.
- `kohya`: `images/<stem>.jpg` with the dense caption in `images/<stem>.txt` (kohya-ss sd-scripts
  and musubi-tuner read this pair), `meta_cap.json` in the shape sd-scripts'
  `finetune/merge_captions_to_metadata.py` writes, {"<stem>": {"caption": "…"}} (its default key is
  the file name without extension), and a musubi-tuner `dataset.toml` for the folder.
- `webdataset`: `shard-000000.tar`, … with `shard_size` samples each; a sample is `<stem>.jpg`,
  `<stem>.txt` (dense caption) and `<stem>.json` (key, the four fields, character_mentions,
  provenance). Stems have no dots, since webdataset splits a member name at its first dot.

Every file is written as its record arrives and never read back, so memory stays flat however
many frames there are; kohya's JSON map is streamed entry by entry for the same reason.
Provenance must be strict JSON (no NaN or infinity: pass None), as Arrow and most readers refuse
anything else.
"""

import io
import json
import tarfile
from abc import ABC, abstractmethod
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO, ClassVar, TextIO

from workers.exports.config import ExportConfig
from workers.exports.dense import DenseTemplate
from workers.exports.records import ExportRecord, copy_image, sized_image

IMAGES = "images"


def dump_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


class FormatWriter(ABC):
    """Writes one format into `root` (an empty folder), one record at a time, then `close()`."""

    # The README.md of the export: how the trainer this format is for reads it.
    how_to_read: ClassVar[str]

    def __init__(self, root: Path, config: ExportConfig, template: DenseTemplate) -> None:
        self.root = root
        self.config = config
        self.template = template
        self._files = ExitStack()

    @abstractmethod
    def write(self, record: ExportRecord) -> None: ...

    def close(self) -> None:
        self._files.close()

    def summary(self) -> dict[str, object]:
        """What manifest.json should say about this format beyond the frame count."""
        return {}

    def _open_text(self, relative: str) -> TextIO:
        return self._files.enter_context(open(self.root / relative, "x", encoding="utf-8", newline="\n"))

    def _save_image(self, folder: str, record: ExportRecord) -> str:
        relative = f"{folder}/{record.image_name}"
        # "x": a second record with the same stem fails instead of replacing the first one's image.
        with open(self.root / relative, "xb") as out:
            copy_image(record, out)
        return relative


FORMATS: dict[str, type[FormatWriter]] = {}


def register(name: str):
    def add(cls: type[FormatWriter]) -> type[FormatWriter]:
        FORMATS[name] = cls
        return cls

    return add


def writer_for(name: str) -> type[FormatWriter]:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"Unknown export format {name!r}; choose one of {', '.join(FORMATS)}.") from None


def _structured(record: ExportRecord) -> dict[str, object]:
    return {**record.structured(), "character_mentions": list(record.character_mentions)}


@register("jsonl")
class StructuredJsonlWriter(FormatWriter):
    how_to_read = """\
Structured captions: one JSON object per line in captions.jsonl, its image at `image_path`
(relative to this folder).

    import json
    for line in open("captions.jsonl", encoding="utf-8"):
        row = json.loads(line)  # key, image_path, scene, background, characters, salient_objects, provenance
"""

    def __init__(self, root: Path, config: ExportConfig, template: DenseTemplate) -> None:
        super().__init__(root, config, template)
        (root / IMAGES).mkdir()
        self._lines = self._open_text("captions.jsonl")

    def write(self, record: ExportRecord) -> None:
        image_path = self._save_image(IMAGES, record)
        row = {"key": record.key, "image_path": image_path, **_structured(record), "provenance": record.provenance}
        self._lines.write(dump_json(row) + "\n")


@register("dense")
class DenseJsonlWriter(FormatWriter):
    how_to_read = """\
Dense captions: captions.jsonl holds {"key", "image_path", "caption"} per line, image_path relative
to this folder. It is musubi-tuner's image_jsonl_file shape: set `image_jsonl_file` to this file
and run from this folder (or make the paths absolute).
"""

    def __init__(self, root: Path, config: ExportConfig, template: DenseTemplate) -> None:
        super().__init__(root, config, template)
        (root / IMAGES).mkdir()
        self._lines = self._open_text("captions.jsonl")

    def write(self, record: ExportRecord) -> None:
        image_path = self._save_image(IMAGES, record)
        row = {"key": record.key, "image_path": image_path, "caption": self.template.render(record)}
        self._lines.write(dump_json(row) + "\n")


@register("hf")
class ImageFolderWriter(FormatWriter):
    how_to_read = """\
A Hugging Face imagefolder: train/metadata.jsonl names each image in `file_name`, its dense
caption in `text`; provenance and character_mentions are JSON strings (json.loads them).

    from datasets import load_dataset
    dataset = load_dataset("imagefolder", data_dir="<this folder>")["train"]
"""
    split = "train"

    def __init__(self, root: Path, config: ExportConfig, template: DenseTemplate) -> None:
        super().__init__(root, config, template)
        (root / self.split).mkdir()
        self._lines = self._open_text(f"{self.split}/metadata.jsonl")

    def write(self, record: ExportRecord) -> None:
        self._save_image(self.split, record)
        row = {
            "file_name": record.image_name,
            "text": self.template.render(record),
            "key": record.key,
            **record.structured(),
            "character_mentions": dump_json(list(record.character_mentions)),
            "provenance": dump_json(record.provenance),
        }
        self._lines.write(dump_json(row) + "\n")


@register("kohya")
class KohyaWriter(FormatWriter):
    how_to_read = """\
kohya-ss / musubi-tuner layout: images/<stem>.jpg with its caption in images/<stem>.txt.

- musubi-tuner: `--dataset_config dataset.toml`, run from this folder (its paths are relative).
- sd-scripts fine-tuning: meta_cap.json is what finetune/merge_captions_to_metadata.py would write
  for images/ ({"<stem>": {"caption": ...}}); continue with prepare_buckets_latents.py, or use
  images/ as a DreamBooth-style image_dir with caption_extension = ".txt".
"""
    metadata_file = "meta_cap.json"

    def __init__(self, root: Path, config: ExportConfig, template: DenseTemplate) -> None:
        super().__init__(root, config, template)
        (root / IMAGES).mkdir()
        self._write_dataset_toml()
        self._metadata = self._open_text(self.metadata_file)
        self._metadata.write("{")
        self._entries = 0

    def write(self, record: ExportRecord) -> None:
        caption = self.template.render(record)
        self._save_image(IMAGES, record)
        with open(self.root / IMAGES / f"{record.file_stem}.txt", "x", encoding="utf-8") as out:
            out.write(caption)
        separator = "\n" if self._entries == 0 else ",\n"
        self._metadata.write(f"{separator}  {dump_json(record.file_stem)}: {dump_json({'caption': caption})}")
        self._entries += 1

    def close(self) -> None:
        if not self._metadata.closed:
            self._metadata.write("\n}\n")
        super().close()

    def _write_dataset_toml(self) -> None:
        width, height = self.config.resolution
        # JSON strings are valid TOML basic strings, so dump_json quotes the paths safely.
        text = f"""\
# musubi-tuner dataset config (see its docs/dataset_config.md). Paths are relative to where
# musubi-tuner runs: start it from this folder, or make them absolute.
[general]
resolution = [{width}, {height}]
caption_extension = ".txt"
batch_size = 1
enable_bucket = true
bucket_no_upscale = false

[[datasets]]
image_directory = {dump_json(IMAGES)}
cache_directory = {dump_json("cache")}
num_repeats = 1
"""
        (self.root / "dataset.toml").write_text(text, encoding="utf-8")


@register("webdataset")
class WebDatasetWriter(FormatWriter):
    how_to_read = """\
WebDataset tar shards: each sample is <stem>.jpg, <stem>.txt (dense caption) and <stem>.json
(structured fields and provenance). manifest.json gives the shard pattern.

    import webdataset as wds
    dataset = wds.WebDataset("shard-{000000..000009}.tar", shardshuffle=False)
"""

    def __init__(self, root: Path, config: ExportConfig, template: DenseTemplate) -> None:
        super().__init__(root, config, template)
        self._tar: tarfile.TarFile | None = None
        self._shards = 0
        self._in_shard = 0

    def write(self, record: ExportRecord) -> None:
        tar = self._shard()
        stem = record.file_stem
        with sized_image(record) as (stream, size):
            _add(tar, f"{stem}.{record.image_ext[1:]}", stream, size)
        payload = {"key": record.key, **_structured(record), "provenance": record.provenance}
        for name, text in ((f"{stem}.txt", self.template.render(record)), (f"{stem}.json", dump_json(payload))):
            data = text.encode()
            _add(tar, name, io.BytesIO(data), len(data))
        self._in_shard += 1

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        super().close()

    def summary(self) -> dict[str, object]:
        return {"shards": self._shards, "shard_size": self.config.shard_size, "urls": self._url_pattern()}

    def _shard(self) -> tarfile.TarFile:
        """The shard to write into: a new one when none is open or the open one is full."""
        if self._tar is None or self._in_shard == self.config.shard_size:
            if self._tar is not None:
                self._tar.close()
            self._tar = tarfile.open(self.root / f"shard-{self._shards:06d}.tar", mode="x")
            self._shards += 1
            self._in_shard = 0
        return self._tar

    def _url_pattern(self) -> str | None:
        """The shards in webdataset's brace notation, e.g. shard-{000000..000009}.tar."""
        if self._shards <= 1:
            return "shard-000000.tar" if self._shards else None
        return f"shard-{{000000..{self._shards - 1:06d}}}.tar"


def _add(tar: tarfile.TarFile, name: str, stream: BinaryIO, size: int) -> None:
    # Fixed mode and time, no owner: the same records give the same shard bytes.
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    tar.addfile(info, stream)
    # TarFile keeps every member's header in `members` (for reading back); a writer never needs
    # them, and a 1,000-sample shard would hold 3,000.
    tar.members.clear()
