"""Dense captions: the structured caption collapsed into one text with an editable template.

Every text format (dense, hf, kohya, webdataset) takes its caption text from here, so a lead
edits one template and every trainer sees the same words. Fields that are empty leave no junk
behind: whitespace is collapsed, a space before punctuation and doubled punctuation (". .") are
removed, leading punctuation is dropped and the first letter is capitalised — so with the default
template a frame without characters reads "In a kitchen. …", not " in a kitchen. …". A
connector word next to an empty field in the middle of a sentence ("Ana in .") cannot be guessed
away: put fields that may be empty at the edges of a sentence.
"""

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from workers.exports.records import ExportRecord
from workers.vlm.parsing import CAPTION_KEYS

DEFAULT_TEMPLATE = "{characters} in {background}. {scene} {salient_objects}"

_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+(?=[.,;:!?])")
_PUNCTUATION_RUN = re.compile(r"[.,;:!?](?:\s*[.,;:!?])+")
_LEADING_JUNK = re.compile(r"^[\s.,;:!?]+")
_TRAILING_JUNK = re.compile(r"[\s,;:]+$")
_SENTENCE_END = ".!?"


def join_names(names: Sequence[str]) -> str:
    """ "Ana", "Ana and Bo", "Ana, Bo and Cy": names as a sentence would list them."""
    names = [name.strip() for name in names if name.strip()]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def tidy(text: str) -> str:
    """Whitespace and punctuation that empty fields left behind, cleaned up (see module doc)."""
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCTUATION.sub("", text)
    text = _PUNCTUATION_RUN.sub(_strongest_mark, text)
    text = _TRAILING_JUNK.sub("", _LEADING_JUNK.sub("", text))
    return text[:1].upper() + text[1:]


def _strongest_mark(match: re.Match[str]) -> str:
    # "kitchen.," and "kitchen,." both end a sentence: the sentence end wins over the comma.
    marks = [char for char in match.group() if not char.isspace()]
    return next((mark for mark in marks if mark in _SENTENCE_END), marks[0])


@dataclass(frozen=True)
class DenseTemplate:
    """A `str.format` template over the caption fields, checked when it is made.

    Only bare placeholders are allowed ({scene}, not {scene.upper} or {0}), so a template from a
    form can never reach attributes; a format spec or conversion is allowed ({scene!s:.80}).
    """

    text: str = DEFAULT_TEMPLATE

    def __post_init__(self) -> None:
        allowed = ", ".join(CAPTION_KEYS)
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(self.text) if name is not None]
        except ValueError as exc:
            raise ValueError(f"The caption template is malformed ({exc}); use placeholders like {{scene}}.") from exc
        unknown = sorted({name for name in names if name not in CAPTION_KEYS})
        if unknown:
            shown = ", ".join(f"{{{name}}}" for name in unknown)
            raise ValueError(f"Unknown placeholder(s) {shown} in the caption template; allowed: {allowed}.")
        if not names:
            raise ValueError(
                f"The caption template has no placeholder, so every caption would be the same; use {allowed}."
            )
        try:
            # A spec the values cannot take ({scene:d}) or a nested one ({scene:{width}}) fails now, not mid-export.
            self.render_fields(scene="", background="", characters=(), salient_objects="")
        except (ValueError, KeyError, IndexError) as exc:
            raise ValueError(
                f"The caption template cannot be filled in ({exc!r}); use placeholders like {{scene}}."
            ) from exc

    def render(self, record: ExportRecord) -> str:
        return self.render_fields(
            scene=record.scene,
            background=record.background,
            characters=record.characters,
            salient_objects=record.salient_objects,
        )

    def render_fields(self, *, scene: str, background: str, characters: Sequence[str], salient_objects: str) -> str:
        text = self.text.format(
            scene=scene.strip(),
            background=background.strip(),
            characters=join_names(characters),
            salient_objects=salient_objects.strip(),
        )
        return tidy(text)
