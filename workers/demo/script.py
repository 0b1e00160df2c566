"""The demo world's script: for every shot, the structured caption a careful annotator would write.

It is the truth the demo's models learn from (on another stretch of the world, another seed) and
the truth the demo's numbers are measured against. Its four fields are the caption schema's:
scene (what happens), background (the setting), characters (each named character in view, with
what it looks like there) and salient objects (the props).
"""

from workers.demo.sprites import SPRITE
from workers.demo.world import ShotPlan

PLACES = {  # background → (the place in a sentence, the background field)
    "meadow": ("the meadow", "a sunny meadow with green hills and flowers"),
    "forest": ("the forest", "a dark green forest with tall trees"),
    "night_street": ("the night street", "a city street at night with lit windows"),
    "living_room": ("the living room", "a cosy living room with a red sofa and a window"),
    "beach": ("the beach", "a sandy beach by the blue sea"),
    "snowy_mountain": ("the snowy mountains", "snowy mountains under a pale sky"),
    "underwater": ("the sea floor", "the sea floor under deep blue water"),
    "desert": ("the desert", "a hot desert with sand dunes"),
}
LOOKS = {  # a character's look in a few words, as a caption would put it
    "Ellie": "a coral-pink ball with a yellow bow",
    "Victor": "a tall navy-blue rectangle in a top hat",
    SPRITE: "lime-green teardrops with wings",
    "Bruno": "a brown bear with an orange scarf",
    "Mira": "a purple cone with a golden star",
    "Tock": "a grey robot with a clock on its chest",
    "Pip": "a yellow chick in a blue cap",
    "Luna": "a cyan star in sunglasses",
}
CLOSE_UP_HEIGHT = 0.5  # a figure taller than half the frame is a close-up
COUNTS = {2: "two", 3: "three", 4: "four", 5: "five"}


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _description(plan: ShotPlan, name: str) -> str:
    if name == SPRITE:
        return f"{COUNTS.get(plan.shot.sprite_copies, str(plan.shot.sprite_copies))} {LOOKS[SPRITE]} flying together"
    heights = [placement.box_height for placement in plan.placements if placement.name == name]
    close_up = bool(heights) and max(heights) > CLOSE_UP_HEIGHT
    return LOOKS[name] + (", seen close up" if close_up else ", standing on the ground")


def shot_caption(plan: ShotPlan) -> dict:
    """The shot's caption in the caption schema (characters sorted by name, as the detector lists them)."""
    place, background = PLACES[plan.shot.background]
    names = list(plan.shot.characters)
    scene = f"{_joined(names)} in {place}." if names else f"Nobody is in {place}."
    return {
        "scene": scene,
        "background": background,
        "characters": [{"name": name, "description": _description(plan, name)} for name in names],
        "salient_objects": _joined(list(plan.shot.props)) if plan.shot.props else "nothing else",
    }


def script_texts() -> list[str]:
    """Every phrase the script can write: what a demo model's tokenizer is trained on."""
    return [
        *(text for pair in PLACES.values() for text in pair),
        *LOOKS.values(),
        *LOOKS,
        "Nobody is in",
        ", seen close up",
        ", standing on the ground",
        "flying together",
        "nothing else",
        *COUNTS.values(),
    ]
