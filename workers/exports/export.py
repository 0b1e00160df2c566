"""Write a captioned dataset into a folder, all or nothing.

The export is written into a sibling folder `<out_dir>.partial-…` and renamed to `out_dir` only
once every record, manifest.json and README.md are written; if anything fails (a record that
cannot be written, a failing iterator, a cancel raised from `on_progress`) the partial folder is
removed and `out_dir` is as it was. `out_dir` must be absent or empty: an export never writes over
earlier files. A process killed outright leaves its `*.partial-*` folder behind for the caller's
clean-up, never a half-written `out_dir`.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path

from workers.exports.config import ExportConfig, ExportResult
from workers.exports.dense import DenseTemplate
from workers.exports.formats import FormatWriter, writer_for
from workers.exports.lint import CaptionLinter, LintReport
from workers.exports.records import ExportRecord

MANIFEST = "manifest.json"


def write_export(
    records: Iterable[ExportRecord],
    out_dir: Path | str,
    config: ExportConfig,
    on_progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write `records` in `config.format` into `out_dir`; `on_progress(frames_written)` after each.

    Records are read one at a time and never kept; the only per-record state is the set of keys
    and stems seen (to refuse duplicates) and, when `config.lint` is set, the linter's counts.
    """
    writer_cls = writer_for(config.format)
    out_dir = Path(out_dir)
    _refuse_non_empty(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        partial.chmod(0o755)  # mkdtemp's 0700 would follow the folder into out_dir
        template = DenseTemplate(config.template)
        linter = CaptionLinter(config.lint, template) if config.lint else None
        writer = writer_cls(partial, config, template)
        try:
            frames = _write_records(records, writer, linter, on_progress)
        except BaseException:
            with suppress(Exception):  # the original error is the one worth raising
                writer.close()
            raise
        writer.close()
        lint = linter.report() if linter else None
        _write_manifest(partial, config, writer, frames, lint)
        (partial / "README.md").write_text(_readme(config, frames, writer_cls), encoding="utf-8")
        _publish(partial, out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    files, size = _tally(out_dir)
    return ExportResult(format=config.format, frames=frames, files=files, bytes=size, out_dir=str(out_dir), lint=lint)


def _write_records(
    records: Iterable[ExportRecord],
    writer: FormatWriter,
    linter: CaptionLinter | None,
    on_progress: Callable[[int], None] | None,
) -> int:
    seen_keys: set[str] = set()
    seen_stems: set[str] = set()
    frames = 0
    for record in records:
        if record.key in seen_keys:
            raise ValueError(f"Record key {record.key!r} appears twice; every exported frame needs its own key.")
        if record.file_stem in seen_stems:
            raise ValueError(
                f"Record {record.key!r}: file_stem {record.file_stem!r} was already used by another record."
            )
        seen_keys.add(record.key)
        seen_stems.add(record.file_stem)
        try:
            writer.write(record)
        except Exception as exc:
            exc.add_note(f"while exporting record {record.key!r} ({record.file_stem})")
            raise
        if linter is not None:
            linter.add(record)
        frames += 1
        if on_progress is not None:
            on_progress(frames)
    return frames


def _refuse_non_empty(out_dir: Path) -> None:
    if out_dir.is_dir():
        with os.scandir(out_dir) as entries:
            if next(entries, None) is not None:
                raise FileExistsError(
                    f"{out_dir} is not empty; an export never writes over earlier files: choose a new folder."
                )
    elif out_dir.exists() or out_dir.is_symlink():
        raise FileExistsError(f"{out_dir} exists and is not a folder; choose a new folder for the export.")


def _publish(partial: Path, out_dir: Path) -> None:
    if out_dir.is_dir():
        out_dir.rmdir()  # only ever empty here; rmdir refuses if something arrived meanwhile
    partial.rename(out_dir)


def _write_manifest(
    root: Path, config: ExportConfig, writer: FormatWriter, frames: int, lint: LintReport | None
) -> None:
    manifest = {
        "format": config.format,
        "frames": frames,
        "template": config.template,
        **writer.summary(),
        "metadata": dict(config.metadata),
        "lint": lint.to_dict() if lint else None,
    }
    text = json.dumps(manifest, ensure_ascii=False, indent=2, allow_nan=False)
    (root / MANIFEST).write_text(text + "\n", encoding="utf-8")


def _readme(config: ExportConfig, frames: int, writer_cls: type[FormatWriter]) -> str:
    return (
        f"# Captioned dataset ({config.format}, {frames} frames)\n\n"
        "Exported by VIVECaption Studio. manifest.json holds the caption template, the export's metadata and,\n"
        "when the export was linted, the lint report.\n\n"
        f"{writer_cls.how_to_read}"
    )


def _tally(root: Path) -> tuple[int, int]:
    files = size = 0
    for folder, _, names in os.walk(root):
        for name in names:
            files += 1
            size += os.stat(os.path.join(folder, name)).st_size
    return files, size
