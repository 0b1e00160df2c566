"""What an export is given and what it reports, as plain dataclasses."""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from workers.exports.dense import DEFAULT_TEMPLATE, DenseTemplate
from workers.exports.lint import LintConfig, LintReport


@dataclass(frozen=True)
class ExportConfig:
    """`format` is a name in `workers.exports.formats.FORMATS` (checked by `write_export`).

    `metadata` is written verbatim into manifest.json (the project, who exported, when): the
    library adds no clock of its own, so the same records and config give the same bytes.
    """

    format: str
    template: str = DEFAULT_TEMPLATE
    shard_size: int = 1000  # webdataset: samples per tar shard
    resolution: tuple[int, int] = (1024, 1024)  # kohya: [W, H] written into musubi-tuner's dataset.toml
    metadata: Mapping[str, object] = field(default_factory=dict)
    lint: LintConfig | None = None  # lint while writing; the report lands in the result and manifest.json

    def __post_init__(self) -> None:
        DenseTemplate(self.template)  # raises ValueError naming the allowed placeholders
        if not isinstance(self.shard_size, int) or self.shard_size < 1:
            raise ValueError("shard_size must be a whole number of samples, at least 1.")
        if len(self.resolution) != 2 or min(self.resolution) < 1:
            raise ValueError("resolution must be [width, height] in pixels.")


@dataclass(frozen=True)
class ExportResult:
    format: str
    frames: int
    files: int
    bytes: int
    out_dir: str
    lint: LintReport | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "lint": self.lint.to_dict() if self.lint else None}
