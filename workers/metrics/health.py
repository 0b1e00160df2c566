"""Model-free universal metrics (paper §2.2): a cheap health check run on every caption.

- Length in tokens of the captioner's raw output, under any tokenizer, flagged over a limit
  (the paper calls 1024 tokens "too long").
- Structure adherence: the raw output is a JSON object as written (no repair needed), it fits
  the caption schema (`StructuredCaption`), every key is present and the required fields are not
  blank. Repairs, missing keys and blank fields are reported one by one, so a low adherence rate
  comes with its reasons.
"""

from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from pydantic import ValidationError

from workers.vlm.parsing import CAPTION_KEYS, StructuredCaption, extract_json

# Returns the token sequence of a text, e.g. `str.split`, an open_clip tokenizer's `encode`, or
# `lambda text: hf_tokenizer(text, add_special_tokens=False)["input_ids"]`.
Tokenize = Callable[[str], Sequence[object]]


@dataclass(frozen=True)
class HealthConfig:
    token_limit: int = 1024
    # Fields that must not be blank. "characters" is in by default (paper §2.2: all keys non-empty);
    # a project with many character-less frames may drop it, since the caption prompt asks for [].
    required_fields: tuple[str, ...] = CAPTION_KEYS
    histogram_bins: int = 20

    def __post_init__(self) -> None:
        if self.token_limit < 1:
            raise ValueError("token_limit must be at least 1.")
        unknown = sorted(set(self.required_fields) - set(CAPTION_KEYS))
        if unknown:
            raise ValueError(f"Unknown caption fields {unknown}; the schema has {list(CAPTION_KEYS)}.")
        if self.histogram_bins < 1:
            raise ValueError("histogram_bins must be at least 1.")


@dataclass(frozen=True)
class CaptionHealth:
    key: Hashable
    tokens: int
    too_long: bool
    parsed: bool  # a JSON object could be read, possibly after repair
    repairs: tuple[str, ...]  # what extract_json had to fix ("code_fence", "truncated", ...)
    schema_valid: bool  # the object fits StructuredCaption's types
    missing_fields: tuple[str, ...]
    empty_fields: tuple[str, ...]  # present but blank (whitespace, [], {}, null), any schema key
    adheres: bool
    error: str


def count_tokens(text: str, tokenize: Tokenize) -> int:
    tokens = tokenize(text)
    if isinstance(tokens, Mapping):
        # len() of a BatchEncoding counts its keys, not tokens: a silent wrong answer otherwise.
        raise TypeError("The tokenizer returned a mapping; pass a callable that returns the token ids.")
    return len(tokens)


def _is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, Mapping):
        return all(_is_blank(item) for item in value.values())
    if isinstance(value, list):
        return all(_is_blank(item) for item in value)
    return False


def caption_health(key: Hashable, raw: str, tokenize: Tokenize, config: HealthConfig = HealthConfig()) -> CaptionHealth:
    tokens = count_tokens(raw, tokenize)
    value, flags, error = extract_json(raw, "{")
    repairs = [flag for flag in flags if flag != "empty"]  # an empty answer is an error, not a repair
    parsed = isinstance(value, dict)
    if value is not None and not parsed:
        error = f"Expected a JSON object, got {type(value).__name__}."
    missing: tuple[str, ...] = ()
    empty: tuple[str, ...] = ()
    schema_valid = False
    if not raw.strip():
        empty = tuple(CAPTION_KEYS)  # no answer: every field is empty, not zero problems
    elif not parsed:
        missing = tuple(CAPTION_KEYS)  # an answer that is no JSON object has none of the fields
    if parsed:
        missing = tuple(field for field in CAPTION_KEYS if field not in value)
        empty = tuple(field for field in CAPTION_KEYS if field in value and _is_blank(value[field]))
        try:
            StructuredCaption.model_validate(value)
            schema_valid = True
        except ValidationError as exc:
            error = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    adheres = (
        parsed
        and not repairs
        and schema_valid
        and not missing
        and not any(field in config.required_fields for field in empty)
    )
    return CaptionHealth(
        key=key,
        tokens=tokens,
        too_long=tokens > config.token_limit,
        parsed=parsed,
        repairs=tuple(repairs),
        schema_valid=schema_valid,
        missing_fields=missing,
        empty_fields=empty,
        adheres=adheres,
        error=error,
    )


@dataclass
class HealthReport:
    rows: list[CaptionHealth]
    config: HealthConfig

    def summary(self) -> dict:
        """Counts and histogram-ready data for the health page; plain values for JSON/CSV."""
        lengths = np.array([row.tokens for row in self.rows], dtype=np.int64)
        n = len(self.rows)
        token_stats = None
        histogram = {"edges": [], "counts": []}
        if n:
            token_stats = {
                "min": int(lengths.min()),
                "max": int(lengths.max()),
                "mean": float(lengths.mean()),
                "median": float(np.median(lengths)),
                "p95": float(np.percentile(lengths, 95)),
            }
            counts, edges = np.histogram(lengths, bins=self.config.histogram_bins)
            histogram = {"edges": edges.tolist(), "counts": counts.tolist()}
        adheres = sum(row.adheres for row in self.rows)
        return {
            "n": n,
            "token_limit": self.config.token_limit,
            "too_long": sum(row.too_long for row in self.rows),
            "tokens": token_stats,
            "token_histogram": histogram,
            "parsed": sum(row.parsed for row in self.rows),
            "repaired": sum(row.parsed and bool(row.repairs) for row in self.rows),
            "schema_valid": sum(row.schema_valid for row in self.rows),
            "adheres": adheres,
            "adherence_rate": adheres / n if n else None,
            "repairs": dict(Counter(flag for row in self.rows for flag in row.repairs)),
            "missing_fields": {field: sum(field in row.missing_fields for row in self.rows) for field in CAPTION_KEYS},
            "empty_fields": {field: sum(field in row.empty_fields for row in self.rows) for field in CAPTION_KEYS},
        }

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "rows": [asdict(row) for row in self.rows]}


def caption_health_report(
    captions: Mapping[Hashable, str], tokenize: Tokenize, config: HealthConfig = HealthConfig()
) -> HealthReport:
    """Health of every caption (key → the captioner's raw output)."""
    return HealthReport([caption_health(key, raw, tokenize, config) for key, raw in captions.items()], config)
