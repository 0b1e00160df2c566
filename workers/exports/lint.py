"""Lint before export: a model-free check of the captions a trainer is about to read.

It looks at the dense caption (what the text formats write) and at the structured fields:

- over-long captions: more tokens than the text encoder reads (default 77, CLIP's context; the
  default tokenizer counts words, so pass an open_clip or Hugging Face tokenizer for exact counts),
- empty fields: which caption field is blank, how often,
- identity phrases: a word n-gram (2-4 words) that is in nearly every caption of the frames
  featuring a character but much rarer elsewhere ("red scarf" with every "Ana"). A text-to-image
  model trained on those captions ties the character's identity to the phrase instead of the name,
  which is exactly what character-consistent captioning wants to avoid.

`CaptionLinter` works in one pass with `add(record)` so the export job lints while it writes; the
per-frame state it keeps is n-gram counts (per character and overall) and a few examples. Counts
stay under `LintConfig.max_ngrams` entries per table by forgetting the rarest n-grams (lossy
counting); a report made after such pruning says `approximate`, with the most any count may be
short by.

The notions of a blank field and of counting tokens are `workers.metrics.health`'s, reused.
"""

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from workers.exports.dense import DenseTemplate
from workers.exports.records import ExportRecord
from workers.metrics.health import Tokenize, _is_blank, count_tokens
from workers.vlm.parsing import CAPTION_KEYS

# Function words: an n-gram made only of these ("in the", "of a") says nothing about identity.
DEFAULT_STOP_WORDS = frozenset(
    """a an the and or but nor of in on at to with without by for from into onto over under near
    behind beside between through across along around up down out off is are was were be been being
    has have had do does did this that these those there here it its it's he she they them his her
    hers their theirs him we us our you your i me my as while who whom which what where when than
    then so very too also not no all each both some any one two""".split()
)

_CLAUSE_BREAK = re.compile(r"[.,;:!?()\[\]\"“”]+")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


@dataclass(frozen=True)
class LintConfig:
    token_limit: int = 77
    tokenize: Tokenize = str.split
    # Fields whose blanks are counted; "characters" is in, as in HealthConfig, though a frame
    # without anyone in it is fine: its count is then the number of such frames.
    fields: tuple[str, ...] = CAPTION_KEYS
    ngram_sizes: tuple[int, ...] = (2, 3, 4)
    identity_min_share: float = 0.8  # of the character's captions that hold the phrase
    identity_min_frames: int = 5  # a character needs this many frames before a phrase can be "always"
    identity_max_ratio: float = 0.5  # share without the character ≤ this × share with it
    max_phrases_per_character: int = 10
    stop_words: frozenset[str] = DEFAULT_STOP_WORDS
    max_examples: int = 5
    snippet_chars: int = 160
    max_ngrams: int = 500_000  # per counting table; beyond it the rarest are forgotten
    # The project's roster: a phrase holding any of these names is naming, even a character no
    # exported caption lists in its characters field ("Ellie and Tock in the" is not Ellie's look).
    character_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.token_limit < 1:
            raise ValueError("token_limit must be at least 1.")
        unknown = sorted(set(self.fields) - set(CAPTION_KEYS))
        if unknown:
            raise ValueError(f"Unknown caption fields {unknown}; the schema has {list(CAPTION_KEYS)}.")
        if not self.ngram_sizes or min(self.ngram_sizes) < 1:
            raise ValueError("ngram_sizes must be positive word counts, e.g. (2, 3, 4).")
        if not 0 < self.identity_min_share <= 1:
            raise ValueError("identity_min_share must be in (0, 1].")
        if self.identity_min_frames < 1:
            raise ValueError("identity_min_frames must be at least 1.")
        if not 0 <= self.identity_max_ratio <= 1:
            raise ValueError("identity_max_ratio must be in [0, 1].")
        if self.max_examples < 0 or self.max_phrases_per_character < 1 or self.snippet_chars < 1:
            raise ValueError("max_examples, max_phrases_per_character and snippet_chars must be positive.")
        if self.max_ngrams < 2:
            raise ValueError("max_ngrams must be at least 2.")


@dataclass(frozen=True)
class Example:
    key: str
    snippet: str


@dataclass(frozen=True)
class Finding:
    """How many captions have the problem, and the first few of them."""

    count: int
    examples: tuple[Example, ...]


@dataclass(frozen=True)
class IdentityPhrase:
    character: str
    phrase: str
    count: int  # captions of frames with the character that hold the phrase
    frames_with: int
    share_with: float
    count_without: int
    frames_without: int
    share_without: float
    examples: tuple[Example, ...]


@dataclass(frozen=True)
class LintReport:
    frames: int
    token_limit: int
    too_long: Finding
    empty_fields: dict[str, Finding]
    identity_phrases: tuple[IdentityPhrase, ...]
    approximate: bool = False  # n-gram counts were pruned; a count may be short by `max_count_error`
    max_count_error: int = 0

    @property
    def problems(self) -> int:
        return self.too_long.count + sum(f.count for f in self.empty_fields.values()) + len(self.identity_phrases)

    def to_dict(self) -> dict:
        """Plain JSON values (lists, not tuples), for manifest.json and the job's result."""
        return {**_as_lists(asdict(self)), "problems": self.problems}


class _Examples:
    def __init__(self, limit: int, snippet_chars: int) -> None:
        self.count = 0
        self.limit = limit
        self.snippet_chars = snippet_chars
        self.items: list[Example] = []

    def add(self, key: str, text: str) -> None:
        self.count += 1
        if len(self.items) < self.limit:
            self.items.append(Example(key, _snippet(text, self.snippet_chars)))

    def finding(self) -> Finding:
        return Finding(self.count, tuple(self.items))


class _PrunedCounter:
    """A Counter kept under `cap` entries by dropping the rarest ones (Manku & Motwani's lossy
    counting): a count that survives or comes back is short by at most `floor`."""

    def __init__(self, cap: int) -> None:
        self.counts: Counter[str] = Counter()
        self.cap = cap
        self.floor = 0

    def update(self, items: Iterable[str]) -> None:
        self.counts.update(items)
        if len(self.counts) <= self.cap:
            return
        # Down to half the cap, so the next few updates do not prune again at once.
        while len(self.counts) > self.cap // 2:
            self.floor += 1
            self.counts = Counter({item: n for item, n in self.counts.items() if n > self.floor})


class CaptionLinter:
    """Lints records one at a time; `report()` at any point summarises what it has seen."""

    def __init__(self, config: LintConfig = LintConfig(), template: DenseTemplate = DenseTemplate()) -> None:
        self.config = config
        self.template = template
        self._frames = 0
        self._too_long = self._examples()
        self._empty = {name: self._examples() for name in config.fields}
        self._ngrams_all = _PrunedCounter(config.max_ngrams)
        self._ngrams_with: dict[str, _PrunedCounter] = {}
        self._frames_with: Counter[str] = Counter()
        # The first captions of each character: enough to show examples of any of its phrases.
        self._character_captions: dict[str, list[tuple[str, str]]] = {}
        self._name_words: set[str] = {
            _name_word(word) for name in self.config.character_names for word in _WORD.findall(name.lower())
        }

    def _examples(self) -> _Examples:
        return _Examples(self.config.max_examples, self.config.snippet_chars)

    def add(self, record: ExportRecord, caption: str | None = None) -> None:
        """Lint one record; `caption` is its dense caption when the caller has rendered it already."""
        text = self.template.render(record) if caption is None else caption
        self._frames += 1
        if count_tokens(text, self.config.tokenize) > self.config.token_limit:
            self._too_long.add(record.key, text)
        fields = record.structured()
        for name, examples in self._empty.items():
            if _is_blank(fields[name]):
                examples.add(record.key, text)
        grams = self._ngrams(text)
        self._ngrams_all.update(grams)
        for name in dict.fromkeys(n.strip() for n in record.characters if n.strip()):
            self._frames_with[name] += 1
            self._ngrams_with.setdefault(name, _PrunedCounter(self.config.max_ngrams)).update(grams)
            kept = self._character_captions.setdefault(name, [])
            if len(kept) < self.config.max_examples:
                kept.append((record.key, text))
            self._name_words.update(_name_word(word) for word in _WORD.findall(name.lower()))

    def report(self) -> LintReport:
        phrases = [phrase for name in sorted(self._ngrams_with) for phrase in self._identity_phrases(name)]
        floors = [self._ngrams_all.floor, *(counter.floor for counter in self._ngrams_with.values())]
        return LintReport(
            frames=self._frames,
            token_limit=self.config.token_limit,
            too_long=self._too_long.finding(),
            empty_fields={name: examples.finding() for name, examples in self._empty.items()},
            identity_phrases=tuple(phrases),
            approximate=max(floors) > 0,
            max_count_error=max(floors),
        )

    def _ngrams(self, text: str) -> set[str]:
        """The caption's distinct n-grams within a clause, lowercased, not only stop words."""
        grams: set[str] = set()
        for clause in _CLAUSE_BREAK.split(text.lower()):
            words = _WORD.findall(clause)
            for size in self.config.ngram_sizes:
                for start in range(len(words) - size + 1):
                    gram = words[start : start + size]
                    if not all(word in self.config.stop_words for word in gram):
                        grams.add(" ".join(gram))
        return grams

    def _identity_phrases(self, name: str) -> list[IdentityPhrase]:
        config = self.config
        frames_with = self._frames_with[name]
        frames_without = self._frames - frames_with
        # With no frame without the character there is nothing to be "rarer" than.
        if frames_with < config.identity_min_frames or frames_without == 0:
            return []
        found: dict[str, tuple[int, int]] = {}
        for gram, count in self._ngrams_with[name].counts.items():
            if count / frames_with < config.identity_min_share:
                continue
            # A phrase holding any character's name is naming, not an identity stand-in.
            if any(_name_word(word) in self._name_words for word in gram.split()):
                continue
            without = max(self._ngrams_all.counts.get(gram, 0) - count, 0)
            if without / frames_without <= config.identity_max_ratio * count / frames_with:
                found[gram] = (count, without)
        # "red scarf" inside "a red scarf" with the same count is the same occurrences: keep the longer.
        maximal = [
            gram
            for gram, (count, _) in found.items()
            if not any(other != gram and f" {gram} " in f" {other} " and found[other][0] == count for other in found)
        ]
        maximal.sort(key=lambda gram: (-(found[gram][0] / frames_with - found[gram][1] / frames_without), gram))
        captions = self._character_captions[name]
        phrases = []
        for gram in maximal[: config.max_phrases_per_character]:
            count, without = found[gram]
            examples = tuple(
                Example(key, _snippet(text, config.snippet_chars))
                for key, text in captions
                if gram in self._ngrams(text)
            )
            phrases.append(
                IdentityPhrase(
                    character=name,
                    phrase=gram,
                    count=count,
                    frames_with=frames_with,
                    share_with=count / frames_with,
                    count_without=without,
                    frames_without=frames_without,
                    share_without=without / frames_without,
                    examples=examples,
                )
            )
        return phrases


def lint_records(
    records: Iterable[ExportRecord], config: LintConfig = LintConfig(), template: DenseTemplate = DenseTemplate()
) -> LintReport:
    """A preview-only pass: lint without writing anything."""
    linter = CaptionLinter(config, template)
    for record in records:
        linter.add(record)
    return linter.report()


def _as_lists(value: object) -> object:
    if isinstance(value, dict):
        return {key: _as_lists(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_lists(item) for item in value]
    return value


def _name_word(word: str) -> str:
    # "Ana's scarf" still names Ana.
    return re.sub(r"['’]s$", "", word)


def _snippet(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
