"""Turn raw VLM text into detections and structured captions — or say why not.

Every result keeps the raw text and a list of flags, so a run can report its failure and repair
rates. Repairs (code fences, prose around the JSON, trailing commas, single quotes, output cut off
at max tokens) are applied only when strict parsing fails, and each one is flagged.
"""

import json
import re
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")


@dataclass
class DetectionParse:
    raw: str
    names: list[str] = field(default_factory=list)  # roster names, sorted, each once
    unknown: list[str] = field(default_factory=list)  # names not on the roster (kept, flagged)
    flags: list[str] = field(default_factory=list)
    ok: bool = True
    error: str = ""


@dataclass
class CaptionParse:
    raw: str
    caption: dict | None = None
    flags: list[str] = field(default_factory=list)
    ok: bool = True
    error: str = ""


def _close_truncated(text: str) -> str:
    """Close strings and brackets left open by a generation cut off at max tokens."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append("]" if char == "[" else "}")
        elif char in "]}" and stack:
            stack.pop()
    closed = text + ('"' if in_string else "")
    closed = re.sub(r",\s*$", "", closed.rstrip())
    closed = re.sub(r":\s*$", ': ""', closed)
    return closed + "".join(reversed(stack))


def extract_json(raw: str, opener: str) -> tuple[object | None, list[str], str]:
    """(value, repair flags, error). `opener` is "[" or "{": the kind of value expected."""
    text = raw.strip()
    if not text:
        return None, ["empty"], "The model returned nothing."
    try:
        return json.loads(text), [], ""
    except json.JSONDecodeError:
        pass
    flags: list[str] = []
    fenced = _FENCE.search(text)
    if fenced:
        text, flags = fenced.group(1).strip(), flags + ["code_fence"]
    start = text.find(opener)
    if start == -1:
        return None, flags, f"No JSON {'list' if opener == '[' else 'object'} in the answer."
    closer = "]" if opener == "[" else "}"
    end = text.rfind(closer)
    if start > 0 or (end != -1 and end < len(text) - 1):
        flags.append("prose_around_json")
    candidate = text[start : end + 1] if end > start else text[start:]
    attempts = [
        ("", lambda s: s),
        ("trailing_comma", lambda s: _TRAILING_COMMA.sub(r"\1", s)),
        ("single_quotes", lambda s: _TRAILING_COMMA.sub(r"\1", s.replace("'", '"'))),
    ]
    for flag, repair in attempts:
        try:
            value = json.loads(repair(candidate))
        except json.JSONDecodeError:
            continue
        return value, flags + ([flag] if flag else []), ""
    value = _parse_truncated(text[start:])
    if value is not None:
        return value, flags + ["truncated"], ""
    return None, flags, "The answer's JSON could not be read, even after repair."


def _parse_truncated(text: str, max_cuts: int = 50) -> object | None:
    """Cut back the partial last element until the closed-up text parses (output hit max tokens)."""
    for _ in range(max_cuts):
        try:
            return json.loads(_TRAILING_COMMA.sub(r"\1", _close_truncated(text)))
        except json.JSONDecodeError:
            cut = max(text.rfind(","), text.rfind("["), text.rfind("{"))
            if cut <= 0:
                return None
            text = text[: cut + 1] if text[cut] in "[{" else text[:cut]
    return None


def _roster_index(roster: dict[str, list[str]]) -> dict[str, str]:
    index = {}
    for name, aliases in roster.items():
        for label in [name, *aliases]:
            index[" ".join(label.split()).casefold()] = name
    return index


def parse_detection(raw: str, roster: dict[str, list[str]]) -> DetectionParse:
    """`roster`: canonical name → aliases. Names are matched trimmed and case-folded."""
    result = DetectionParse(raw=raw)
    value, flags, error = extract_json(raw, "[")
    result.flags.extend(flags)
    if value is None:
        # A bare comma-separated answer ("Ellie, Victor") is common: accept it, flagged.
        plain = raw.strip().strip(".")
        if plain and "[" not in plain and "{" not in plain and len(plain) < 500:
            value = [part for part in re.split(r",|\band\b|\n", plain) if part.strip()]
            result.flags.append("not_json")
        else:
            result.ok, result.error = False, error
            return result
    if isinstance(value, dict):  # {"characters": [...]}
        for key in ("characters", "names", "present"):
            if isinstance(value.get(key), list):
                value = value[key]
                result.flags.append("wrapped_in_object")
                break
    if not isinstance(value, list):
        result.ok, result.error = False, f"Expected a list of names, got {type(value).__name__}."
        return result
    index = _roster_index(roster)
    names: set[str] = set()
    for item in value:
        if isinstance(item, dict):
            item = item.get("name", "")
            result.flags.append("objects_not_names")
        if not isinstance(item, str):
            result.flags.append("wrong_type")
            continue
        label = " ".join(item.split()).strip("\"' ")
        if not label:
            continue
        canonical = index.get(label.casefold())
        if canonical is None:
            if label not in result.unknown:
                result.unknown.append(label)
        else:
            names.add(canonical)
    if result.unknown:
        result.flags.append("unknown_names")
    result.names = sorted(names, key=str.casefold)
    result.flags = sorted(set(result.flags), key=result.flags.index)
    return result


class CharacterMention(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    description: str = ""


class StructuredCaption(BaseModel):
    """Caption schema v1: the four fields of paper §3."""

    model_config = ConfigDict(extra="ignore")
    scene: str = Field(min_length=1)
    background: str = Field(min_length=1)
    characters: list[CharacterMention] = Field(default_factory=list)
    salient_objects: str = ""

    @field_validator("salient_objects", mode="before")
    @classmethod
    def _join_objects(cls, value):
        if isinstance(value, list):
            return ", ".join(str(item) for item in value)
        return value

    @field_validator("characters", mode="before")
    @classmethod
    def _names_as_mentions(cls, value):
        if isinstance(value, list):
            mentions = [{"name": item} if isinstance(item, str) else item for item in value]
            # An entry cut off before its name (truncated output) carries nothing: drop it.
            return [m for m in mentions if not (isinstance(m, dict) and not m.get("name"))]
        return value


CAPTION_KEYS = ("scene", "background", "characters", "salient_objects")


def parse_caption(raw: str) -> CaptionParse:
    result = CaptionParse(raw=raw)
    value, flags, error = extract_json(raw, "{")
    result.flags.extend(flags)
    if value is None:
        result.ok, result.error = False, error
        return result
    if not isinstance(value, dict):
        result.ok, result.error = False, f"Expected a JSON object, got {type(value).__name__}."
        return result
    missing = [key for key in CAPTION_KEYS if key not in value]
    if missing:
        result.flags.append("missing_keys")
    try:
        caption = StructuredCaption.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        result.ok, result.error = False, f"The caption does not fit the schema: {problems}"
        return result
    result.caption = caption.model_dump()
    return result


def caption_paragraph(fields: dict) -> str:
    """A structured caption collapsed into one dense paragraph (the other way round is impossible).

    What text-only consumers read: CLIPScore's text tower, a paragraph-caption dataset export.
    """
    parts = [str(fields.get("scene") or "").strip(), str(fields.get("background") or "").strip()]
    for character in fields.get("characters") or []:
        if isinstance(character, dict):
            name = str(character.get("name") or "").strip()
            description = str(character.get("description") or "").strip()
            parts.append(f"{name}: {description}" if description else name)
    parts.append(str(fields.get("salient_objects") or "").strip())
    return " ".join(part if part.endswith((".", "!", "?")) else part + "." for part in parts if part)
