"""Versioned prompt templates (paper §5): shown in the UI, recorded with every output.

Messages use the chat-template content-part format that Qwen2.5-VL, InternVL and OpenAI-style
servers share: [{"type": "text", "text": ...}, {"type": "image"}, ...]; the images themselves
travel beside the messages, in order.
"""

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


CAPTION_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "scene": {"type": "string"},
        "background": {"type": "string"},
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


def detection_prompt(cards: list[CharacterCard], target: Path, max_references: int = 1) -> Prompt:
    """References + names + descriptions interleaved, then instructions, then the frame."""
    cards = sorted(cards, key=lambda card: card.name.casefold())
    content, images = _roster_parts(cards, max_references)
    content.append({"type": "text", "text": DETECTION_INSTRUCTIONS + "\n"})
    content.append({"type": "image"})
    images.append(Path(target))
    schema = {"type": "array", "items": {"type": "string", "enum": [card.name for card in cards]}, "uniqueItems": True}
    messages = [{"role": "user", "content": content}]
    return Prompt(DETECTION_PROMPT_VERSION, messages, images, len(images) - 1, schema)


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
    return Prompt(CAPTION_PROMPT_VERSION, messages, images, len(images) - 1, CAPTION_JSON_SCHEMA)
