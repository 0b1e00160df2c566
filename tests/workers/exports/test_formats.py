"""Every format read back with its consumer's own reader: what went in comes out, frame by frame."""

import json
import tarfile
import tomllib

import braceexpand
import datasets
import webdataset as wds

from tests.workers.exports.conftest import image_bytes
from workers.exports import FORMATS, DenseTemplate, ExportConfig, write_export

TEMPLATE = DenseTemplate()


def export(records, tmp_path, format_name, **config):
    out = tmp_path / f"export-{format_name}"
    result = write_export(records, out, ExportConfig(format=format_name, **config))
    assert result.frames == len(records)
    return out


def read_jsonl(path):
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def structured(record):
    return {
        "scene": record.scene,
        "background": record.background,
        "characters": list(record.characters),
        "salient_objects": record.salient_objects,
    }


def test_the_registry_has_the_five_formats():
    assert sorted(FORMATS) == ["dense", "hf", "jsonl", "kohya", "webdataset"]


def test_jsonl_holds_the_structure_and_provenance(records, tmp_path):
    out = export(records, tmp_path, "jsonl")
    rows = read_jsonl(out / "captions.jsonl")
    assert [row["key"] for row in rows] == [record.key for record in records]
    for row, record in zip(rows, records, strict=True):
        assert row == {
            "key": record.key,
            "image_path": f"images/{record.file_stem}{record.image_ext}",
            **structured(record),
            "character_mentions": list(record.character_mentions),
            "provenance": record.provenance,
        }
        assert (out / row["image_path"]).read_bytes() == image_bytes(record)
    assert rows[1]["character_mentions"] == [{"name": "Ana", "description": "in a red scarf"}, {"name": "Bo"}]


def test_dense_is_image_path_and_caption(records, tmp_path):
    out = export(records, tmp_path, "dense", template="{characters}: {scene}")
    rows = read_jsonl(out / "captions.jsonl")
    custom = DenseTemplate("{characters}: {scene}")
    for row, record in zip(rows, records, strict=True):
        assert row == {"key": record.key, "image_path": f"images/{record.image_name}", "caption": custom.render(record)}
        assert (out / row["image_path"]).read_bytes() == image_bytes(record)
    assert rows[0]["caption"] == "Ana: Ana stirs a pot."
    assert rows[2]["caption"] == "Rain falls on an empty square."  # no characters: no leading ":"


def test_hf_imagefolder_loads_with_datasets(records, tmp_path):
    out = export(records, tmp_path, "hf")
    loaded = datasets.load_dataset("imagefolder", data_dir=str(out), cache_dir=str(tmp_path / "hf-cache"))
    assert list(loaded) == ["train"]
    train = loaded["train"]
    assert train.num_rows == len(records)
    assert {"image", "text", "key", "scene", "background", "characters", "salient_objects", "provenance"} <= set(
        train.column_names
    )
    by_key = {record.key: record for record in records}
    first = train[0]["image"]
    assert first.size == (48, 32)  # decoded as a real image
    raw = train.cast_column("image", datasets.Image(decode=False))
    seen = set()
    for row in raw:
        record = by_key[row["key"]]
        seen.add(record.key)
        # file_name mapped to the image itself: the very bytes that went in
        assert row["image"]["path"].endswith(record.image_name)
        with open(row["image"]["path"], "rb") as image:
            assert image.read() == image_bytes(record)
        assert row["text"] == TEMPLATE.render(record)
        assert {field: row[field] for field in ("scene", "background", "characters", "salient_objects")} == structured(
            record
        )
        assert json.loads(row["provenance"]) == record.provenance
        assert json.loads(row["character_mentions"]) == list(record.character_mentions)
    assert seen == set(by_key)


def test_kohya_pairs_captions_with_images_and_streams_the_metadata(records, tmp_path):
    out = export(records, tmp_path, "kohya", resolution=(960, 544))
    for record in records:
        assert (out / "images" / record.image_name).read_bytes() == image_bytes(record)
        assert (out / "images" / f"{record.file_stem}.txt").read_text(encoding="utf-8") == TEMPLATE.render(record)
    metadata = json.loads((out / "meta_cap.json").read_text(encoding="utf-8"))
    assert metadata == {record.file_stem: {"caption": TEMPLATE.render(record)} for record in records}
    assert list(metadata) == [record.file_stem for record in records]
    config = tomllib.loads((out / "dataset.toml").read_text(encoding="utf-8"))
    assert config["general"]["caption_extension"] == ".txt"
    assert config["general"]["resolution"] == [960, 544]
    assert config["datasets"][0]["image_directory"] == "images"


def test_kohya_metadata_of_no_frames_is_still_json(tmp_path):
    out = export([], tmp_path, "kohya")
    assert json.loads((out / "meta_cap.json").read_text(encoding="utf-8")) == {}


def test_webdataset_shards_read_back_with_webdataset(records, tmp_path):
    out = export(records, tmp_path, "webdataset", shard_size=3)
    shards = sorted(out.glob("shard-*.tar"))
    assert [shard.name for shard in shards] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    # three members a sample, shard_size samples a shard (the last holds the rest)
    with_members = [len(tarfile.open(shard).getnames()) for shard in shards]
    assert with_members == [9, 9, 6]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["shards"] == 3 and manifest["shard_size"] == 3
    urls = [str(out / name) for name in braceexpand.braceexpand(manifest["urls"])]
    assert urls == [str(shard) for shard in shards]

    samples = list(wds.WebDataset(urls, shardshuffle=False))
    assert [sample["__key__"] for sample in samples] == [record.file_stem for record in records]
    for sample, record in zip(samples, records, strict=True):
        image_ext = record.image_ext[1:]
        assert set(sample) >= {image_ext, "txt", "json"}
        assert sample[image_ext] == image_bytes(record)
        assert sample["txt"].decode() == TEMPLATE.render(record)
        assert json.loads(sample["json"]) == {
            "key": record.key,
            **structured(record),
            "character_mentions": list(record.character_mentions),
            "provenance": record.provenance,
        }


def test_the_same_records_give_the_same_shard_bytes(records, tmp_path):
    first = export(records, tmp_path / "a", "webdataset", shard_size=4)
    second = export(records, tmp_path / "b", "webdataset", shard_size=4)
    for shard in sorted(first.glob("*.tar")):
        assert shard.read_bytes() == (second / shard.name).read_bytes()
