"""write_export is all or nothing, never overwrites, refuses bad input before or while writing."""

import json
import math

import pytest

from workers.exports import ExportConfig, ExportRecord, LintConfig, lint_records, safe_file_stem, write_export


def tree(folder):
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def leftovers(parent):
    return sorted(path.name for path in parent.iterdir() if ".partial-" in path.name)


def failing_after(records, count):
    yield from records[:count]
    raise RuntimeError("storage went away")


def test_result_counts_what_was_written_and_progress_counts_frames(records, tmp_path):
    out = tmp_path / "out"
    progress = []
    result = write_export(records, out, ExportConfig(format="jsonl"), on_progress=progress.append)
    assert progress == list(range(1, len(records) + 1))
    files = [path for path in out.rglob("*") if path.is_file()]
    assert (result.format, result.frames, result.out_dir) == ("jsonl", len(records), str(out))
    assert result.files == len(files) == len(records) + 3  # images, captions.jsonl, manifest.json, README.md
    assert result.bytes == sum(path.stat().st_size for path in files)
    assert result.lint is None
    assert leftovers(tmp_path) == []


def test_the_manifest_carries_the_callers_metadata_and_no_clock(records, tmp_path):
    metadata = {"project": "Demo", "exported_by": "lead", "created": "2026-12-01T10:00:00Z"}
    config = ExportConfig(format="dense", template="{scene}", metadata=metadata)
    write_export(records, tmp_path / "a", config)
    write_export(records, tmp_path / "b", config)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == {"format": "dense", "frames": 8, "template": "{scene}", "metadata": metadata, "lint": None}
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert "musubi-tuner" in (tmp_path / "a" / "README.md").read_text(encoding="utf-8")


def test_a_non_empty_folder_is_refused_and_kept(records, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.txt").write_text("an earlier export")
    with pytest.raises(FileExistsError, match="not empty"):
        write_export(records, out, ExportConfig(format="jsonl"))
    assert tree(out) == {"earlier.txt": b"an earlier export"}
    assert leftovers(tmp_path) == []


def test_a_file_in_the_way_is_refused(records, tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(FileExistsError):
        write_export(records, tmp_path / "out", ExportConfig(format="jsonl"))


def test_an_empty_folder_is_filled(records, tmp_path):
    (tmp_path / "out").mkdir()
    result = write_export(records, tmp_path / "out", ExportConfig(format="kohya"))
    assert result.frames == len(records)
    assert (tmp_path / "out" / "meta_cap.json").is_file()


@pytest.mark.parametrize("format_name", ["jsonl", "dense", "hf", "kohya", "webdataset"])
def test_a_failing_iterator_leaves_nothing_and_loses_nothing(records, tmp_path, format_name):
    earlier = tmp_path / "earlier"
    write_export(records, earlier, ExportConfig(format=format_name, shard_size=2))
    before = tree(earlier)
    with pytest.raises(RuntimeError, match="storage went away"):
        write_export(failing_after(records, 5), tmp_path / "next", ExportConfig(format=format_name, shard_size=2))
    assert not (tmp_path / "next").exists()
    assert leftovers(tmp_path) == []
    assert tree(earlier) == before


def test_a_failure_keeps_an_empty_target_folder_as_it_was(records, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(RuntimeError):
        write_export(failing_after(records, 3), tmp_path / "out", ExportConfig(format="hf"))
    assert (tmp_path / "out").is_dir() and not any((tmp_path / "out").iterdir())
    assert leftovers(tmp_path) == []


def test_a_cancel_raised_from_progress_removes_the_partial_export(records, tmp_path):
    class Cancelled(Exception):
        pass

    def cancel_at_four(frames):
        if frames == 4:
            raise Cancelled

    with pytest.raises(Cancelled):
        write_export(records, tmp_path / "out", ExportConfig(format="webdataset"), on_progress=cancel_at_four)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sources"]


def test_duplicate_stems_and_keys_are_refused(records, tmp_path):
    twin = ExportRecord(key="asset-99", file_stem=records[0].file_stem, image=lambda: b"", scene="x", background="y")
    with pytest.raises(ValueError, match="file_stem '000001' was already used"):
        write_export([records[0], twin], tmp_path / "a", ExportConfig(format="jsonl"))
    same_key = ExportRecord(key=records[0].key, file_stem="other", image=lambda: b"", scene="x", background="y")
    with pytest.raises(ValueError, match="appears twice"):
        write_export([records[0], same_key], tmp_path / "b", ExportConfig(format="webdataset"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sources"]


def test_a_record_that_cannot_be_written_is_named(records, tmp_path):
    bad = ExportRecord(
        key="asset-nan", file_stem="nan", image=lambda: b"", scene="x", background="y", provenance={"judge": math.nan}
    )
    with pytest.raises(ValueError) as error:
        write_export([*records[:2], bad], tmp_path / "out", ExportConfig(format="jsonl"))
    assert "asset-nan" in "\n".join(error.value.__notes__)
    assert not (tmp_path / "out").exists()


def test_an_unknown_format_is_refused_before_anything_is_made(records, tmp_path):
    with pytest.raises(ValueError, match="choose one of jsonl, dense, hf, kohya, webdataset"):
        write_export(records, tmp_path / "out", ExportConfig(format="parquet"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sources"]


def test_lint_runs_in_the_same_pass_and_lands_in_the_manifest(records, tmp_path):
    lint = LintConfig(token_limit=10)
    result = write_export(records, tmp_path / "out", ExportConfig(format="hf", lint=lint))
    assert result.lint == lint_records(records, lint)
    assert result.lint.too_long.count > 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["lint"] == result.lint.to_dict()
    assert json.loads(json.dumps(result.to_dict()))["lint"]["frames"] == len(records)


@pytest.mark.parametrize("stem", ["a/b", "..", "a.b", "a\\b", "", "with space", "x" * 201])
def test_file_stems_are_refused_unless_safe_everywhere(stem):
    with pytest.raises(ValueError, match="file_stem"):
        ExportRecord(key="k", file_stem=stem, image=lambda: b"", scene="s", background="b")


def test_safe_file_stem_makes_a_usable_stem():
    assert safe_file_stem("film.mp4 @ 00:12") == "film-mp4-00-12"
    with pytest.raises(ValueError):
        safe_file_stem("../")


def test_records_refuse_a_bare_string_of_characters_and_bad_extensions():
    with pytest.raises(TypeError, match="list of names"):
        ExportRecord(key="k", file_stem="s", image=lambda: b"", scene="s", background="b", characters="Ana")
    with pytest.raises(ValueError, match="image_ext"):
        ExportRecord(key="k", file_stem="s", image=lambda: b"", scene="s", background="b", image_ext="jpg")


def test_config_refuses_a_shard_size_below_one():
    with pytest.raises(ValueError, match="shard_size"):
        ExportConfig(format="webdataset", shard_size=0)
