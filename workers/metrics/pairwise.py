"""A pairwise VLM judge: shown the frame and two captions, it says per field which is better.

Published studies find VLM judges agree with people far better on pairwise choices than on
absolute 1–10 scores, but they favour one position. So every pair is asked twice, in both orders
(the baseline as A, then as B), and the two answers are combined from the candidate's side: the
same preference twice, or once with a tie, is a preference; two opposite answers are the position
speaking, not the captions, and count as a tie. Answers are read strictly, as the 1–10 judge's.
"""

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from workers.metrics.judge import _caption_text
from workers.vlm.backends import Backend, ModelSpec, load_backend
from workers.vlm.parsing import extract_json
from workers.vlm.prompts import CharacterCard, Prompt, _roster_parts

PAIRWISE_VERSION = "pairwise-v1"
PAIRWISE_FIELDS = ("scene", "background", "characters", "salient_objects", "overall")
CHOICES = ("A", "B", "same")

PAIRWISE_RUBRIC = (
    "Two captions, A and B, were written for the frame above, for a text-to-image training dataset. "
    'For each field, say which caption describes the frame better: "A", "B", or "same" when '
    "neither is better.\n"
    "- scene: what happens (action, interactions, mood, composition).\n"
    "- background: the setting (place, environment, time of day, lighting).\n"
    "- characters: exactly the characters in the frame{roster_hint}, each one's appearance and action; "
    "a caption naming someone who is not there is worse.\n"
    "- salient_objects: the notable objects, named and described correctly, nothing invented.\n"
    "- overall: which caption you would rather train on.\n"
    "Judge only what the frame shows, not the captions' length or style. Answer only with a JSON "
    'object, for example {{"scene": "A", "background": "same", "characters": "B", '
    '"salient_objects": "same", "overall": "B"}}.'
)

PAIRWISE_JSON_SCHEMA = {
    "type": "object",
    "properties": {name: {"type": "string", "enum": list(CHOICES)} for name in PAIRWISE_FIELDS},
    "required": list(PAIRWISE_FIELDS),
}


@dataclass(frozen=True)
class PairItem:
    key: Hashable
    image: Path
    baseline: str | Mapping
    candidate: str | Mapping


def pairwise_prompt(
    image: Path,
    first: str | Mapping,
    second: str | Mapping,
    cards: Sequence[CharacterCard] = (),
    max_references: int = 1,
) -> Prompt:
    """Roster (optional), the frame, caption A (`first`) and caption B (`second`), the rubric."""
    cards = sorted(cards, key=lambda card: card.name.casefold())
    content, images = _roster_parts(cards, max_references)
    if cards:
        content.insert(0, {"type": "text", "text": "The characters of this film:\n"})
    content.append({"type": "text", "text": "The frame:\n"})
    content.append({"type": "image"})
    images.append(Path(image))
    target_index = len(images) - 1
    content.append(
        {"type": "text", "text": f"\nCaption A:\n{_caption_text(first)}\n\nCaption B:\n{_caption_text(second)}\n\n"}
    )
    content.append(
        {"type": "text", "text": PAIRWISE_RUBRIC.format(roster_hint=" with the names given above" if cards else "")}
    )
    return Prompt(PAIRWISE_VERSION, [{"role": "user", "content": content}], images, target_index, PAIRWISE_JSON_SCHEMA)


@dataclass(frozen=True)
class PairwiseParse:
    choices: dict[str, str] | None
    flags: tuple[str, ...]
    error: str


def parse_pairwise(raw: str) -> PairwiseParse:
    """Every field's "A", "B" or "same", or why the answer is unparsable."""
    value, flags, error = extract_json(raw, "{")
    if "truncated" in flags:
        return PairwiseParse(None, tuple(flags), "The answer was cut off.")
    if value is None:
        return PairwiseParse(None, tuple(flags), error)
    if not isinstance(value, dict):
        return PairwiseParse(None, tuple(flags), f"Expected a JSON object, got {type(value).__name__}.")
    problems = [
        f"{name}: {value.get(name)!r} is not one of A, B, same"
        for name in PAIRWISE_FIELDS
        if value.get(name) not in CHOICES
    ]
    if problems:
        return PairwiseParse(None, tuple(flags), "; ".join(problems))
    return PairwiseParse({name: value[name] for name in PAIRWISE_FIELDS}, tuple(flags), "")


def _from_candidate(choice: str, candidate_is: str) -> int:
    return 0 if choice == "same" else (1 if choice == candidate_is else -1)


def combine_orders(forward: Mapping[str, str], backward: Mapping[str, str]) -> dict[str, int]:
    """`forward`: answered with the candidate as B; `backward`: with the candidate as A. Per field,
    +1 the candidate is better, -1 worse, 0 the same — or the two orders disagree."""
    combined = {}
    for name in PAIRWISE_FIELDS:
        total = _from_candidate(forward[name], "B") + _from_candidate(backward[name], "A")
        combined[name] = (total > 0) - (total < 0)
    return combined


@dataclass(frozen=True)
class PairwiseRow:
    key: Hashable
    status: str  # "ok", "unparsable" (an order answered outside the form) or "error" (no answer)
    preferences: dict[str, int] | None  # from the candidate's side, both orders combined
    forward: dict[str, str] | None
    backward: dict[str, str] | None
    raw: tuple[str, str]
    error: str


def judge_pairs(
    judge: ModelSpec | Backend,
    items: Sequence[PairItem],
    cards: Sequence[CharacterCard] = (),
    max_references: int = 1,
    chunk_size: int = 16,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[PairwiseRow]:
    """Ask the judge about every pair in both orders (one batch holds both)."""
    backend = load_backend(judge) if isinstance(judge, ModelSpec) else judge
    rows: list[PairwiseRow] = []
    for start in range(0, len(items), chunk_size):
        chunk = items[start : start + chunk_size]
        prompts = []
        for item in chunk:
            prompts.append(pairwise_prompt(item.image, item.baseline, item.candidate, cards, max_references))
            prompts.append(pairwise_prompt(item.image, item.candidate, item.baseline, cards, max_references))
        outputs = backend.generate(prompts)
        for index, item in enumerate(chunk):
            forward, backward = outputs[2 * index], outputs[2 * index + 1]
            rows.append(_pair_row(item.key, forward, backward))
        if on_progress is not None:
            on_progress(len(rows), len(items))
    return rows


def _pair_row(key: Hashable, forward, backward) -> PairwiseRow:
    raw = (forward.text, backward.text)
    if forward.error or backward.error:
        return PairwiseRow(key, "error", None, None, None, raw, forward.error or backward.error)
    first, second = parse_pairwise(forward.text), parse_pairwise(backward.text)
    if first.choices is None or second.choices is None:
        error = "; ".join(f"{order}: {p.error}" for order, p in (("forward", first), ("backward", second)) if p.error)
        return PairwiseRow(key, "unparsable", None, first.choices, second.choices, raw, error)
    return PairwiseRow(key, "ok", combine_orders(first.choices, second.choices), first.choices, second.choices, raw, "")
