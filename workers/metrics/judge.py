"""A VLM judge, a model-based universal metric (paper §6.2): scores each caption field 1–10 against
the image with a rubric; overall = the mean of the four field scores.

The judge is any `ModelSpec` the backend registry knows (a local transformers model or any
OpenAI-compatible server), so an open local judge can stand in for the paper's closed one. The
rubric is versioned like the other prompts and recorded with every score.

The answer is read strictly. A JSON object wrapped in a code fence or in prose, or with trailing
commas, is read (and flagged). An answer cut off at max tokens, one missing a field, or one with a
score that is not a whole number from 1 to 10 (7.5, "7", true, 11) is *unparsable*: it is counted
and excluded from every mean and test, never guessed — a cut-off "10" would read as "1".
"""

import json
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workers.vlm.backends import Backend, ModelSpec, load_backend
from workers.vlm.parsing import extract_json
from workers.vlm.prompts import CharacterCard, Prompt, _roster_parts

JUDGE_RUBRIC_VERSION = "judge-v1"
JUDGE_FIELDS = ("salient_objects", "characters", "background", "scene")
SCORE_RANGE = (1, 10)

JUDGE_RUBRIC = (
    "You are grading a caption written for the frame above, for a text-to-image training dataset. "
    "Grade each of its four fields against the frame on a scale from 1 to 10.\n"
    "- salient_objects: are the notable objects named and described correctly? 10: every important "
    "object, accurately, nothing invented; 5: some important objects missing or partly wrong; 1: "
    "missing, wrong or invented.\n"
    "- characters: are exactly the characters in the frame named{roster_hint}, and is each one's "
    "appearance and action right? 10: the right characters, correctly named and described (a frame "
    "without characters and a caption that names none also gets 10); 5: one character missing, "
    "extra or misnamed, or descriptions partly wrong; 1: mostly wrong, invented or missing.\n"
    "- background: is the setting (place, environment, time of day, lighting) right? 10: accurate "
    "and specific; 5: vague or partly wrong; 1: wrong.\n"
    "- scene: is what happens (action, interactions, mood, composition) right? 10: accurate and "
    "complete; 5: partly right or generic; 1: wrong.\n"
    "Judge only what the frame shows. Answer only with a JSON object of whole-number scores, for "
    'example {{"salient_objects": 7, "characters": 5, "background": 9, "scene": 6}}.'
)

JUDGE_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        name: {"type": "integer", "minimum": SCORE_RANGE[0], "maximum": SCORE_RANGE[1]} for name in JUDGE_FIELDS
    },
    "required": list(JUDGE_FIELDS),
}


@dataclass(frozen=True)
class JudgeItem:
    key: Hashable
    image: Path
    caption: str | Mapping  # the raw caption text, or a parsed structured caption


def _caption_text(caption: str | Mapping) -> str:
    return caption if isinstance(caption, str) else json.dumps(dict(caption), ensure_ascii=False)


def judge_prompt(item: JudgeItem, cards: Sequence[CharacterCard] = (), max_references: int = 1) -> Prompt:
    """Roster (references, names, descriptions; optional), the frame, the caption, the rubric."""
    cards = sorted(cards, key=lambda card: card.name.casefold())
    content, images = _roster_parts(cards, max_references)
    if cards:
        content.insert(0, {"type": "text", "text": "The characters of this film:\n"})
    content.append({"type": "text", "text": "The frame:\n"})
    content.append({"type": "image"})
    images.append(Path(item.image))
    target_index = len(images) - 1
    roster_hint = " with the names given above" if cards else ""
    content.append({"type": "text", "text": f"\nThe caption:\n{_caption_text(item.caption)}\n\n"})
    content.append({"type": "text", "text": JUDGE_RUBRIC.format(roster_hint=roster_hint)})
    messages = [{"role": "user", "content": content}]
    return Prompt(JUDGE_RUBRIC_VERSION, messages, images, target_index, JUDGE_JSON_SCHEMA)


@dataclass(frozen=True)
class JudgeParse:
    scores: dict[str, int] | None
    flags: tuple[str, ...]
    error: str

    @property
    def ok(self) -> bool:
        return self.scores is not None


def _whole_score(value: object) -> int | None:
    # bool is an int in Python, and JSON true is no score.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value != int(value):
        return None
    score = int(value)
    return score if SCORE_RANGE[0] <= score <= SCORE_RANGE[1] else None


def parse_judgement(raw: str) -> JudgeParse:
    """The four scores, or why the answer is unparsable (see the module docstring)."""
    value, flags, error = extract_json(raw, "{")
    if "truncated" in flags:
        return JudgeParse(None, tuple(flags), "The answer was cut off; its scores cannot be trusted.")
    if value is None:
        return JudgeParse(None, tuple(flags), error)
    if not isinstance(value, dict):
        return JudgeParse(None, tuple(flags), f"Expected a JSON object, got {type(value).__name__}.")
    problems = []
    scores: dict[str, int] = {}
    for name in JUDGE_FIELDS:
        if name not in value:
            problems.append(f"{name}: missing")
            continue
        score = _whole_score(value[name])
        if score is None:
            problems.append(f"{name}: {value[name]!r} is not a whole number from {SCORE_RANGE[0]} to {SCORE_RANGE[1]}")
        else:
            scores[name] = score
    if problems:
        return JudgeParse(None, tuple(flags), "; ".join(problems))
    return JudgeParse(scores, tuple(flags), "")


@dataclass(frozen=True)
class JudgeRow:
    key: Hashable
    status: str  # "ok", "unparsable" (answered, but not a valid judgement) or "error" (no answer)
    scores: dict[str, int] | None
    overall: float | None
    raw: str
    flags: tuple[str, ...]
    error: str
    seconds: float


@dataclass
class JudgeReport:
    judge: str  # the judge model's version label
    rubric_version: str
    rows: list[JudgeRow] = field(default_factory=list)

    def scores(self) -> dict[str, dict[Hashable, float]]:
        """Score name ("overall" and the four fields) → frame key → score, valid judgements only:
        the input of `workers.metrics.stats`."""
        valid = [row for row in self.rows if row.status == "ok"]
        by_score = {"overall": {row.key: row.overall for row in valid}}
        for name in JUDGE_FIELDS:
            by_score[name] = {row.key: float(row.scores[name]) for row in valid}
        return by_score

    def summary(self) -> dict:
        n = len(self.rows)
        counts = {status: sum(row.status == status for row in self.rows) for status in ("ok", "unparsable", "error")}
        means = {
            name: (sum(values.values()) / len(values) if values else None) for name, values in self.scores().items()
        }
        return {
            "judge": self.judge,
            "rubric_version": self.rubric_version,
            "n": n,
            **counts,
            "unparsable_rate": counts["unparsable"] / n if n else None,
            "means": means,
        }

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "rows": [asdict(row) for row in self.rows]}


def judge_captions(
    judge: ModelSpec | Backend,
    items: Sequence[JudgeItem],
    cards: Sequence[CharacterCard] = (),
    max_references: int = 1,
    chunk_size: int = 32,
    on_progress: Callable[[int, int], None] | None = None,
) -> JudgeReport:
    """Judge every (frame, caption) item. `judge`: a spec loaded through the backend registry, or
    a backend already loaded (reused across pipelines). Give the spec room for the answer:
    max_new_tokens ≥ 64. `cards`: the roster, shown with reference images when given."""
    backend = load_backend(judge) if isinstance(judge, ModelSpec) else judge
    report = JudgeReport(judge=backend.spec.version, rubric_version=JUDGE_RUBRIC_VERSION)
    for start in range(0, len(items), chunk_size):
        chunk = items[start : start + chunk_size]
        outputs = backend.generate([judge_prompt(item, cards, max_references) for item in chunk])
        for item, output in zip(chunk, outputs, strict=True):
            report.rows.append(_judge_row(item.key, output.text, output.error, output.seconds))
        if on_progress is not None:
            on_progress(len(report.rows), len(items))
    return report


def _judge_row(key: Hashable, raw: str, generation_error: str, seconds: float) -> JudgeRow:
    if generation_error:
        return JudgeRow(key, "error", None, None, raw, (), generation_error, seconds)
    parsed = parse_judgement(raw)
    if not parsed.ok:
        return JudgeRow(key, "unparsable", None, None, raw, parsed.flags, parsed.error, seconds)
    overall = sum(parsed.scores.values()) / len(JUDGE_FIELDS)
    return JudgeRow(key, "ok", parsed.scores, overall, raw, parsed.flags, "", seconds)


# --- how far the judge agrees with a reference -----------------------------------------------------------------


@dataclass(frozen=True)
class JudgeAgreement:
    """The judge's scores of one field against a reference score of the same captions (e.g. the
    characters' F1 against the demo world's truth): does the judge follow caption quality?"""

    n: int  # captions with both a valid judgement and a reference score
    spearman: float | None  # rank correlation; None when either side is constant (no ranking to agree on)
    spearman_p: float | None
    pairs: int  # same frame, two pipelines, the reference prefers one of them
    pairs_agree: int  # … and the judge prefers the same one
    pairs_tied: int  # … and the judge scores them the same

    @property
    def pairwise_agreement(self) -> float | None:
        return self.pairs_agree / self.pairs if self.pairs else None

    def to_dict(self) -> dict:
        return {**asdict(self), "pairwise_agreement": self.pairwise_agreement}


def judge_agreement(
    judge: Mapping[str, Mapping[Hashable, float]], reference: Mapping[str, Mapping[Hashable, float]]
) -> JudgeAgreement:
    """`judge` and `reference`: pipeline → frame → score. Spearman over every caption scored by
    both; pairwise: for each frame and pair of pipelines the reference tells apart, whether the
    judge's score moves the same way (the judge's view of "which caption is better")."""
    from scipy.stats import spearmanr

    both = [
        (judge[pipeline][frame], reference[pipeline][frame])
        for pipeline in judge.keys() & reference.keys()
        for frame in judge[pipeline].keys() & reference[pipeline].keys()
    ]
    rho = p = None
    if len(both) > 2 and len({j for j, _ in both}) > 1 and len({r for _, r in both}) > 1:
        result = spearmanr([j for j, _ in both], [r for _, r in both])
        rho, p = float(result.statistic), float(result.pvalue)
    pipelines = sorted(judge.keys() & reference.keys())
    pairs = agree = tied = 0
    for i, first in enumerate(pipelines):
        for second in pipelines[i + 1 :]:
            frames = judge[first].keys() & judge[second].keys() & reference[first].keys() & reference[second].keys()
            for frame in frames:
                truth = reference[second][frame] - reference[first][frame]
                if truth == 0:
                    continue
                said = judge[second][frame] - judge[first][frame]
                pairs += 1
                agree += said * truth > 0
                tied += said == 0
    return JudgeAgreement(len(both), rho, p, pairs, agree, tied)
