"""Versioned prompt templates (paper §5): shown in the UI, recorded with every output.

Messages use the chat-template content-part format that Qwen2.5-VL, InternVL and OpenAI-style
servers share: [{"type": "text", "text": ...}, {"type": "image"}, ...]; the images themselves
travel beside the messages, in order.
"""

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

DETECTION_PROMPT_VERSION = "detect-v1"
CAPTION_PROMPT_VERSION = "caption-v1"

DETECTION_INSTRUCTIONS = (
    "Above are reference images of the characters of this film, each followed by its name and a "
    "short description. Look at the next image, a frame of the film. List every character from the "
    "list above that appears in the frame. A character that appears several times counts once. "
    "Ignore characters that are not in the list. Answer only with a JSON list of names, sorted "
    'alphabetically, for example ["Ellie", "Victor"], or [] if none of them appears.'
)
CAPTION_INSTRUCTIONS = (
    "Describe the next image, a frame of the film, for a text-to-image training dataset. Use the "
    "characters' names exactly as given{context}. Answer only with a JSON object with the keys "
    '"scene" (what is happening), "background" (the setting), "characters" (a list of objects with '
    '"name" and "description": what each named character looks like and does in this frame; [] if '
    'none), and "salient_objects" (other notable objects).'
)


@dataclass(frozen=True)
class CharacterCard:
    name: str
    description: str
    reference_paths: tuple[Path, ...] = ()
    aliases: tuple[str, ...] = field(default=())


# What parse_caption accepts (StructuredCaption): scene and background must say something.
CAPTION_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "scene": {"type": "string", "minLength": 1},
        "background": {"type": "string", "minLength": 1},
        "characters": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "description": {"type": "string"}},
                "required": ["name", "description"],
            },
        },
        "salient_objects": {"type": "string"},
    },
    "required": ["scene", "background", "characters", "salient_objects"],
}


@dataclass(frozen=True)
class Prompt:
    version: str
    messages: list[dict]
    images: list[Path]  # in the order of the image parts
    target_index: int  # which image is the frame being asked about
    json_schema: dict | None = None  # for servers that constrain decoding to a schema
    # The same answer as an EBNF grammar (xgrammar's dialect), for what JSON Schema cannot make a
    # decoder keep (no structured-generation library enforces uniqueItems): local constrained
    # decoding prefers it to json_schema. See workers/vlm/constrained.py.
    answer_grammar: str | None = None

    @property
    def text(self) -> str:
        """The prompt's text with image placeholders: what the UI shows and what is stored."""
        parts = []
        for part in self.messages[0]["content"]:
            parts.append("[image]" if part["type"] == "image" else part["text"])
        return "".join(parts)


def _roster_parts(cards: list[CharacterCard], max_references: int) -> tuple[list[dict], list[Path]]:
    content: list[dict] = []
    images: list[Path] = []
    for card in cards:
        for path in card.reference_paths[:max_references]:
            content.append({"type": "image"})
            images.append(Path(path))
        content.append({"type": "text", "text": f"{card.name}: {card.description.strip()}\n"})
    return content, images


def _ebnf_literal(text: str) -> str:
    """An EBNF string literal matching `text` exactly."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def detection_grammar(names: list[str]) -> str:
    """EBNF of the detection answer: a JSON list of roster names, each at most once, in the
    order given (the prompt's: alphabetical by casefold), written as the instructions' example
    is (`["Ellie", "Victor"]`). `from_i` is "one name at position ≥ i, then optionally a later
    one", so the grammar grows linearly with the roster, not with its subsets."""
    names = list(dict.fromkeys(names))  # a name listed twice may still appear once
    if not names:
        return 'root ::= "[]"\n'
    rules = ['root ::= "[" from_0? "]"']
    for index, name in enumerate(names):
        # The name as JSON writes it (quotes and backslashes escaped), inside an EBNF literal.
        answer = _ebnf_literal(json.dumps(name, ensure_ascii=False))
        later = f' (", " from_{index + 1})?' if index + 1 < len(names) else ""
        rules.append(f"name_{index} ::= {answer}{later}")
        rules.append(f"from_{index} ::= name_{index}" + (f" | from_{index + 1}" if later else ""))
    return "\n".join(rules) + "\n"


def detection_prompt(cards: list[CharacterCard], target: Path, max_references: int = 1) -> Prompt:
    """References + names + descriptions interleaved, then instructions, then the frame."""
    cards = sorted(cards, key=lambda card: card.name.casefold())
    content, images = _roster_parts(cards, max_references)
    content.append({"type": "text", "text": DETECTION_INSTRUCTIONS + "\n"})
    content.append({"type": "image"})
    images.append(Path(target))
    names = [card.name for card in cards]
    schema = {"type": "array", "items": {"type": "string", "enum": names}, "uniqueItems": True}
    messages = [{"role": "user", "content": content}]
    return Prompt(
        DETECTION_PROMPT_VERSION, messages, images, len(images) - 1, schema, answer_grammar=detection_grammar(names)
    )


def caption_prompt(cards: list[CharacterCard], target: Path, detected: bool, max_references: int = 1) -> Prompt:
    """The captioner sees the detected characters (or, without detection, the whole roster)."""
    content, images = _roster_parts(sorted(cards, key=lambda card: card.name.casefold()), max_references)
    if detected:
        context = ", who appear in the frame according to the character detector" if cards else ""
        if not cards:
            content.append({"type": "text", "text": "The character detector found no known character in the frame.\n"})
    else:
        context = "; any of them may or may not appear in the frame" if cards else ""
    content.append({"type": "text", "text": CAPTION_INSTRUCTIONS.format(context=context) + "\n"})
    content.append({"type": "image"})
    images.append(Path(target))
    messages = [{"role": "user", "content": content}]
    schema = caption_schema([card.name for card in cards])
    return Prompt(CAPTION_PROMPT_VERSION, messages, images, len(images) - 1, schema)


def caption_schema(names: list[str]) -> dict:
    """The caption schema with each character's name one of the names the prompt gave (the
    detected characters, or the roster): "use the names exactly as given", held to where decoding
    is constrained; none given, no character."""
    schema = copy.deepcopy(CAPTION_JSON_SCHEMA)
    characters = schema["properties"]["characters"]
    if names:
        characters["items"]["properties"]["name"] = {"type": "string", "enum": sorted(names, key=str.casefold)}
    else:
        characters["maxItems"] = 0
    return schema
