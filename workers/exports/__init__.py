"""Dataset export (issue #15): captioned frames written in the layouts trainers read.

- `records`: `ExportRecord`, one frame with its image source, four caption fields and provenance.
- `dense`: `DenseTemplate`, the structured caption collapsed into one text.
- `formats`: the writers, by name in `FORMATS` (jsonl, dense, hf, kohya, webdataset), and their layouts.
- `export`: `write_export`, all or nothing into an empty folder, streaming one record at a time.
- `lint`: `CaptionLinter`, the model-free check of what is exported (one pass, alongside the export).
- `archive`: `pack_zip`, an export folder streamed into a zip for download.

No Django, no torch: the web process may import this package (its heaviest import is numpy).
"""

from workers.exports.archive import pack_zip
from workers.exports.config import ExportConfig, ExportResult
from workers.exports.dense import DEFAULT_TEMPLATE, DenseTemplate, join_names
from workers.exports.export import write_export
from workers.exports.formats import FORMATS
from workers.exports.lint import CaptionLinter, LintConfig, LintReport, lint_records
from workers.exports.records import ExportRecord, safe_file_stem

__all__ = [
    "DEFAULT_TEMPLATE",
    "FORMATS",
    "CaptionLinter",
    "DenseTemplate",
    "ExportConfig",
    "ExportRecord",
    "ExportResult",
    "LintConfig",
    "LintReport",
    "join_names",
    "lint_records",
    "pack_zip",
    "safe_file_stem",
    "write_export",
]
