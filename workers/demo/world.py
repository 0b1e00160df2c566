"""A deterministic synthetic cartoon that stands in for a real film in the offline demo and the tests.

The world is a sequence of one-second shots grouped into scenes: a scene has a place (background)
and a cast, and its shots show changing subsets of that cast at changing positions and sizes. Some
scenes return later (same place, same cast), the way films come back to a location, so clustering
the sampled frames finds real structure. Scenes often open on an empty establishing shot, which
gives the gold set frames with no characters at all.

Ground truth is exact: every shot records which named characters it shows. "Sprite" is drawn as a
flock of 2-5 identical copies but is counted once, as an annotator would tick it once.

Everything is derived from `random.Random(config.seed)`: the same config gives the same manifest,
the same reference PNGs and the same decoded video frames.
"""

import json
import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw

from workers.demo.props import PROP_NAMES, draw_prop_shadow, render_prop
from workers.demo.sprites import (
    BACKGROUND_NAMES,
    CHARACTER_NAMES,
    SPRITE,
    character_spec,
    render_background,
    render_character,
)

MANIFEST_VERSION = 2  # 2: shots list their props
VIDEO_NAME = "demo_world.mp4"
MANIFEST_NAME = "manifest.json"
REFERENCES_DIR = "references"
REFERENCE_BACKGROUND = (244, 242, 236)
REFERENCES_PER_CHARACTER = 2

MIN_CHARACTERS, MAX_CHARACTERS = 5, len(CHARACTER_NAMES)
MIN_SPRITE_COPIES, MAX_SPRITE_COPIES = 2, 5

# How the shots are cut. With scenes of 3-7 shots these give roughly 10-15% empty shots.
SCENE_LENGTHS = (3, 7)
ESTABLISHING_SHOT_CHANCE = 0.4  # a scene opens on the empty place (the film's first scene always does)
CUTAWAY_CHANCE = 0.03  # an empty shot in the middle of a scene
RETURN_TO_SCENE_CHANCE = 0.3  # a new scene repeats an earlier place and cast
SPRITE_JOINS_CHANCE = 0.15  # Sprite joins a scene led by someone else
CAMEO_CHANCE = 0.06  # someone outside the scene's cast walks into one shot
CLOSE_UP_CHANCE = 0.45  # for shots of one or two characters
FLOCK_POSITION_TRIES = 6
PROPS_PER_SCENE = (1, 2)  # every scene has something besides its cast for a caption's salient objects


@dataclass(frozen=True)
class DemoWorldConfig:
    seconds: int = 120  # one shot per second; the video lasts this long
    fps: int = 4  # frames written per second; each shot is held, gently animated, for its second
    width: int = 640
    height: int = 360
    characters: int = 6  # the first N of the roster
    seed: int = 7
    reference_size: int = 256  # reference images are square PNGs this size

    def __post_init__(self) -> None:
        _require_int_in_range("seconds", self.seconds, 1, 3600)
        _require_int_in_range("fps", self.fps, 1, 60)
        _require_int_in_range("width", self.width, 64, 3840)
        _require_int_in_range("height", self.height, 64, 2160)
        # yuv420p stores colour at half resolution, so H.264 needs even dimensions.
        if self.width % 2 or self.height % 2:
            raise ValueError(f"width and height must be even for H.264 video; got {self.width}×{self.height}")
        _require_int_in_range("characters", self.characters, MIN_CHARACTERS, MAX_CHARACTERS)
        _require_int_in_range("seed", self.seed, 0, 2**63 - 1)
        _require_int_in_range("reference_size", self.reference_size, 64, 2048)


def _require_int_in_range(field: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an integer; got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{field} must be between {low} and {high}; got {value}")


@dataclass(frozen=True)
class DemoCharacter:
    name: str
    description: str  # what a VLM prompt would say: colour, shape, accessory
    reference_paths: tuple[Path, ...]  # the sprite alone on a plain light background, two poses/scales


@dataclass(frozen=True)
class DemoShot:
    second: int  # the shot covers [second, second + 1)
    background: str
    characters: tuple[str, ...]  # sorted, each name once (Sprite once even when replicated)
    sprite_copies: int  # how many Sprite copies are drawn; 0 when Sprite is absent
    props: tuple[str, ...] = ()  # the salient objects in view, e.g. "a red balloon", left to right


@dataclass(frozen=True)
class DemoWorldResult:
    video_path: Path
    manifest_path: Path
    characters: tuple[DemoCharacter, ...]
    shots: tuple[DemoShot, ...]


@dataclass(frozen=True)
class SpritePlacement:
    """Where one drawn figure stands in a shot, in fractions of the frame so the plan fits any size."""

    name: str
    centre_x: float  # fraction of the frame's width
    base_y: float  # bottom of the figure's box, fraction of the frame's height
    box_height: float  # the figure's square box, fraction of the frame's height
    mirrored: bool  # facing left
    pose: int
    phase: float  # radians; offsets the bobbing so copies and neighbours do not move in lockstep
    drift: float  # horizontal movement over the shot's second, fraction of the frame's width


@dataclass(frozen=True)
class PropPlacement:
    """Where a prop stands for the whole scene, in fractions of the frame (like SpritePlacement)."""

    name: str
    centre_x: float
    base_y: float
    box_height: float


@dataclass(frozen=True)
class ShotPlan:
    shot: DemoShot
    background_variant: int
    placements: tuple[SpritePlacement, ...]  # in drawing order, back to front
    props: tuple[PropPlacement, ...] = ()  # drawn behind the characters


# --- planning ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scene:
    background: str
    variant: int
    cast: tuple[str, ...]
    length: int


class _Deck:
    """Deals items in shuffled rounds, so every background and every lead turns up before any repeats."""

    def __init__(self, items: Sequence[str], rng: random.Random):
        self._items = tuple(items)
        self._rng = rng
        self._remaining: list[str] = []

    def deal(self) -> str:
        if not self._remaining:
            self._remaining = list(self._items)
            self._rng.shuffle(self._remaining)
        return self._remaining.pop()


def plan_demo_world(config: DemoWorldConfig) -> tuple[ShotPlan, ...]:
    """Every shot of the world: what it shows and where. Depends only on the config."""
    rng = random.Random(config.seed)
    roster = CHARACTER_NAMES[: config.characters]
    aspect = config.width / config.height
    backgrounds, leads = _Deck(BACKGROUND_NAMES, rng), _Deck(roster, rng)
    earlier_scenes: list[_Scene] = []
    plans: list[ShotPlan] = []
    while len(plans) < config.seconds:
        scene = _next_scene(rng, earlier_scenes, backgrounds, leads, roster)
        earlier_scenes.append(scene)
        for index_in_scene in range(min(scene.length, config.seconds - len(plans))):
            opens_film = not plans
            names = _shot_cast(rng, scene, index_in_scene, opens_film, roster)
            plans.append(_compose_shot(rng, len(plans), scene, names, aspect, _scene_props(config.seed, scene)))
    return tuple(plans)


def plan_shuffled_shots(config: DemoWorldConfig) -> tuple[ShotPlan, ...]:
    """Shots drawn as the film draws them, but each its own scene: a random place, variant and cast
    (nobody to three). In the film a scene's place and props give away its cast, so a model that
    learns from it can name the cast without looking at anyone; here only the characters do."""
    rng = random.Random(f"shuffled:{config.seed}")
    roster = CHARACTER_NAMES[: config.characters]
    aspect = config.width / config.height
    plans = []
    for second in range(config.seconds):
        size = rng.choices((0, 1, 2, 3), weights=(1, 4, 4, 2))[0]
        scene = _Scene(rng.choice(BACKGROUND_NAMES), rng.randrange(2**31), tuple(rng.sample(roster, k=size)), 1)
        plans.append(_compose_shot(rng, second, scene, list(scene.cast), aspect, _scene_props(config.seed, scene)))
    return tuple(plans)


def _scene_props(seed: int, scene: _Scene) -> tuple[PropPlacement, ...]:
    """A scene's props, from their own random stream keyed by the scene's variant: a returning scene
    brings the same props back, and the cast and placements of every shot are those the world had
    before it had props."""
    rng = random.Random(f"props:{seed}:{scene.variant}")
    names = rng.sample(PROP_NAMES, k=rng.randint(*PROPS_PER_SCENE))
    sides = rng.sample([(0.04, 0.16), (0.84, 0.96)], k=len(names))
    placements = [
        PropPlacement(name, rng.uniform(*side), rng.uniform(0.8, 0.9), rng.uniform(0.22, 0.3))
        for name, side in zip(names, sides, strict=True)
    ]
    return tuple(sorted(placements, key=lambda placement: placement.centre_x))


def _next_scene(
    rng: random.Random, earlier: list[_Scene], backgrounds: _Deck, leads: _Deck, roster: Sequence[str]
) -> _Scene:
    length = rng.randint(*SCENE_LENGTHS)
    if earlier and rng.random() < RETURN_TO_SCENE_CHANCE:
        returning = rng.choice(earlier)
        return _Scene(returning.background, returning.variant, returning.cast, length)
    lead = leads.deal()
    others = [name for name in roster if name != lead]
    companions = rng.sample(others, k=rng.choice((0, 1, 1, 2)))
    if SPRITE not in (lead, *companions) and rng.random() < SPRITE_JOINS_CHANCE:
        companions.append(SPRITE)
    return _Scene(backgrounds.deal(), rng.randrange(2**31), (lead, *companions), length)


def _shot_cast(
    rng: random.Random, scene: _Scene, index_in_scene: int, opens_film: bool, roster: Sequence[str]
) -> list[str]:
    if index_in_scene == 0 and (opens_film or rng.random() < ESTABLISHING_SHOT_CHANCE):
        return []
    if rng.random() < CUTAWAY_CHANCE:
        return []
    size = min(len(scene.cast), rng.choices((1, 2, 3), weights=(4, 4, 2))[0])
    names = rng.sample(scene.cast, k=size)
    if rng.random() < CAMEO_CHANCE:
        outsiders = [name for name in roster if name not in names]
        names.append(rng.choice(outsiders))
    return names


def _compose_shot(
    rng: random.Random, second: int, scene: _Scene, names: list[str], aspect: float, props: tuple[PropPlacement, ...]
) -> ShotPlan:
    walkers = [name for name in names if not character_spec(name).flies]
    close_up = len(walkers) <= 2 and rng.random() < CLOSE_UP_CHANCE
    placements = _place_walkers(rng, walkers, close_up)
    sprite_copies = rng.randint(MIN_SPRITE_COPIES, MAX_SPRITE_COPIES) if SPRITE in names else 0
    placements += _place_flock(rng, sprite_copies, close_up, aspect, placements)
    shot = DemoShot(second, scene.background, tuple(sorted(names)), sprite_copies, tuple(p.name for p in props))
    return ShotPlan(shot, scene.variant, tuple(placements), props)


def _place_walkers(rng: random.Random, names: list[str], close_up: bool) -> list[SpritePlacement]:
    """Ground characters side by side in equal slots, each facing the middle of the frame."""
    if not names:
        return []
    box = rng.uniform(0.55, 0.78) if close_up else rng.uniform(0.32, 0.5)
    if len(names) >= 3:
        box *= 0.85
    slot = 0.76 / len(names)
    placements = []
    for index, name in enumerate(rng.sample(names, k=len(names))):
        centre = 0.12 + slot * (index + 0.5) + rng.uniform(-0.15, 0.15) * slot
        facing_left = centre > 0.5 if len(names) > 1 else rng.random() < 0.5
        placements.append(
            SpritePlacement(
                name=name,
                centre_x=centre,
                base_y=rng.uniform(0.86, 0.97),
                box_height=box * rng.uniform(0.92, 1.08),
                mirrored=facing_left,
                pose=rng.randint(0, 1),
                phase=rng.uniform(0, math.tau),
                drift=rng.uniform(-0.02, 0.02),
            )
        )
    # Whoever stands lower in the frame is nearer the camera and is drawn last.
    return sorted(placements, key=lambda placement: placement.base_y)


def _place_flock(
    rng: random.Random, copies: int, close_up: bool, aspect: float, walkers: Sequence[SpritePlacement]
) -> list[SpritePlacement]:
    """Sprite's copies fly as a loose row in the upper half, spaced so that each one stays countable."""
    if copies == 0:
        return []
    box = rng.uniform(0.15, 0.22) if close_up else rng.uniform(0.12, 0.18)
    spacing = box * 1.1 / aspect  # one box apart, in fractions of the width
    half_span = spacing * (copies - 1) / 2 + box / aspect / 2  # centre to the outer edge of the last copy
    centre_x = _clearest_x(rng, half_span, [walker.centre_x for walker in walkers])
    row_y = rng.uniform(0.3, 0.55)
    facing_left = rng.random() < 0.5
    box_half_width = box / aspect / 2
    flock = []
    for copy in range(copies):
        offset = (copy - (copies - 1) / 2) * spacing + rng.uniform(-0.15, 0.15) * spacing
        flock.append(
            SpritePlacement(
                name=SPRITE,
                centre_x=min(max(centre_x + offset, box_half_width), 1 - box_half_width),
                base_y=max(box * 1.35, row_y + rng.uniform(-0.5, 0.5) * box),  # room to bob without leaving the top
                box_height=box,
                mirrored=facing_left,
                pose=rng.randint(0, 1),
                phase=rng.uniform(0, math.tau),
                drift=rng.uniform(-0.03, 0.03),
            )
        )
    return flock


def _clearest_x(rng: random.Random, half_span: float, occupied: Sequence[float]) -> float:
    """A flock centre that keeps the whole flock in frame and, of a few random tries, is farthest from the walkers,
    so the copies rarely hide someone's face and every named character stays visible."""
    if half_span >= 0.5:
        return 0.5
    candidates = [rng.uniform(half_span, 1 - half_span) for _ in range(FLOCK_POSITION_TRIES)]
    if not occupied:
        return candidates[0]
    return max(candidates, key=lambda x: min(abs(x - walker_x) for walker_x in occupied))


# --- drawing frames ----------------------------------------------------------------------------------------------


class _FrameRenderer:
    """Draws the frames of shots, caching the backgrounds and sprite sizes that consecutive frames share."""

    def __init__(self, width: int, height: int, fps: int):
        self.width, self.height, self.fps = width, height, fps
        self._backgrounds: dict[tuple[str, int], Image.Image] = {}
        self._sprites: dict[tuple[str, int, int, bool], Image.Image] = {}
        self._props: dict[tuple[str, int], Image.Image] = {}

    def render(self, plan: ShotPlan, step: int) -> Image.Image:
        frame = self._background(plan.shot.background, plan.background_variant).copy()
        shadows = ImageDraw.Draw(frame, "RGBA")  # RGBA drawing on an RGB frame blends, for soft shadows
        progress = step / self.fps
        for prop in plan.props:
            self._draw_prop(frame, shadows, prop)
        for placement in plan.placements:
            self._draw_figure(frame, shadows, placement, progress)
        return frame

    def _background(self, name: str, variant: int) -> Image.Image:
        key = (name, variant)
        if key not in self._backgrounds:
            self._backgrounds[key] = render_background(name, self.width, self.height, variant)
        return self._backgrounds[key]

    def _sprite(self, placement: SpritePlacement, box_px: int) -> Image.Image:
        key = (placement.name, box_px, placement.pose, placement.mirrored)
        if key not in self._sprites:
            self._sprites[key] = render_character(placement.name, box_px, placement.pose, placement.mirrored)
        return self._sprites[key]

    def _draw_prop(self, frame: Image.Image, shadows: ImageDraw.ImageDraw, prop: PropPlacement) -> None:
        box_px = max(4, round(prop.box_height * self.height))
        key = (prop.name, box_px)
        if key not in self._props:
            self._props[key] = render_prop(prop.name, box_px)
        centre_x, feet_y = prop.centre_x * self.width, prop.base_y * self.height
        draw_prop_shadow(shadows, centre_x, feet_y, box_px)
        image = self._props[key]
        frame.paste(image, (round(centre_x - box_px / 2), round(feet_y) - box_px), image)

    def _draw_figure(
        self, frame: Image.Image, shadows: ImageDraw.ImageDraw, placement: SpritePlacement, progress: float
    ) -> None:
        box_px = max(4, round(placement.box_height * self.height))
        flies = character_spec(placement.name).flies
        wave = math.sin(math.tau * progress + placement.phase)
        # Walkers hop a little; fliers float up and down further.
        lift = 0.3 * wave if flies else 0.04 * abs(wave)
        centre_x = (placement.centre_x + placement.drift * progress) * self.width
        bottom = (placement.base_y - lift * placement.box_height) * self.height
        if not flies:
            feet_y = placement.base_y * self.height
            half_width, half_height = box_px * 0.28, max(1.0, box_px * 0.04)
            shadows.ellipse(
                (centre_x - half_width, feet_y - half_height, centre_x + half_width, feet_y + half_height),
                fill=(0, 0, 0, 70),
            )
        sprite = self._sprite(placement, box_px)
        frame.paste(sprite, (round(centre_x - box_px / 2), round(bottom) - box_px), sprite)


def render_shot_frame(plan: ShotPlan, config: DemoWorldConfig, step: int = 0) -> Image.Image:
    """The RGB frame written for `plan` at frame `step` (0..fps-1) of its second, exactly as the video got it."""
    if not 0 <= step < config.fps:
        raise ValueError(f"step must be between 0 and {config.fps - 1}; got {step}")
    return _FrameRenderer(config.width, config.height, config.fps).render(plan, step)


# --- writing the world -------------------------------------------------------------------------------------------


def generate_demo_world(
    config: DemoWorldConfig, out_dir: Path, on_progress: Callable[[int, int], None] | None = None
) -> DemoWorldResult:
    """Write the video, the reference images and the manifest into `out_dir`; the manifest is written last."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plans = plan_demo_world(config)
    characters = tuple(_write_references(name, config.reference_size, out_dir) for name in _roster(config))
    video_path = out_dir / VIDEO_NAME
    _write_video(video_path, plans, config, on_progress)
    shots = tuple(plan.shot for plan in plans)
    manifest_path = out_dir / MANIFEST_NAME
    _write_json_atomically(manifest_path, _manifest(config, characters, shots, out_dir))
    return DemoWorldResult(video_path, manifest_path, characters, shots)


def _roster(config: DemoWorldConfig) -> tuple[str, ...]:
    return CHARACTER_NAMES[: config.characters]


def reference_images(name: str, size: int) -> tuple[Image.Image, ...]:
    """A large standing pose facing right, and a smaller second pose facing left (Sprite: a small group)."""
    first = _reference_canvas(size)
    _paste_centred(first, _cropped_figure(name, round(size * 0.8), pose=0, mirrored=False), (0.5, 0.5))
    second = _reference_canvas(size)
    if name == SPRITE:
        for centre in ((0.27, 0.36), (0.72, 0.42), (0.46, 0.72)):
            _paste_centred(second, _cropped_figure(name, round(size * 0.34), pose=1, mirrored=True), centre)
    else:
        _paste_centred(second, _cropped_figure(name, round(size * 0.55), pose=1, mirrored=True), (0.46, 0.56))
    return first, second


def _reference_canvas(size: int) -> Image.Image:
    return Image.new("RGB", (size, size), REFERENCE_BACKGROUND)


def _cropped_figure(name: str, longest_side: int, pose: int, mirrored: bool) -> Image.Image:
    """The character trimmed to its outline and scaled so its longer side is `longest_side`."""
    figure = render_character(name, longest_side * 2, pose, mirrored)
    figure = figure.crop(figure.getbbox())
    scale = longest_side / max(figure.size)
    new_size = (max(1, round(figure.width * scale)), max(1, round(figure.height * scale)))
    return figure.resize(new_size, Image.Resampling.LANCZOS)


def _paste_centred(canvas: Image.Image, figure: Image.Image, centre: tuple[float, float]) -> None:
    left = round(centre[0] * canvas.width - figure.width / 2)
    top = round(centre[1] * canvas.height - figure.height / 2)
    canvas.paste(figure, (left, top), figure)


def _write_references(name: str, size: int, out_dir: Path) -> DemoCharacter:
    references_dir = out_dir / REFERENCES_DIR
    references_dir.mkdir(exist_ok=True)
    paths = []
    for number, image in enumerate(reference_images(name, size), start=1):
        path = references_dir / f"{name.lower()}_{number}.png"
        image.save(path, format="PNG")
        paths.append(path)
    return DemoCharacter(name, character_spec(name).description, tuple(paths))


def _write_video(
    path: Path, plans: Sequence[ShotPlan], config: DemoWorldConfig, on_progress: Callable[[int, int], None] | None
) -> None:
    # Written under a temporary name and moved into place, so a crash never leaves a truncated video behind.
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    time_base = Fraction(1, config.fps)
    renderer = _FrameRenderer(config.width, config.height, config.fps)
    with av.open(str(partial), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=config.fps)
        stream.width, stream.height = config.width, config.height
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        # crf 18 keeps the flat cartoon colours; a keyframe every second makes seeking to any shot cheap;
        # no B-frames keeps decode order equal to display order.
        stream.options = {"crf": "18", "g": str(config.fps), "bf": "0", "preset": "veryfast"}
        for plan in plans:
            for step in range(config.fps):
                frame = av.VideoFrame.from_image(renderer.render(plan, step))
                frame.pts = plan.shot.second * config.fps + step
                frame.time_base = time_base
                container.mux(stream.encode(frame))
            if on_progress is not None:
                on_progress(plan.shot.second + 1, len(plans))
        container.mux(stream.encode(None))
    os.replace(partial, path)


def _manifest(
    config: DemoWorldConfig, characters: Sequence[DemoCharacter], shots: Sequence[DemoShot], out_dir: Path
) -> dict[str, object]:
    return {
        "version": MANIFEST_VERSION,
        "config": asdict(config),
        "characters": [
            {
                "name": character.name,
                "description": character.description,
                "references": [path.relative_to(out_dir).as_posix() for path in character.reference_paths],
            }
            for character in characters
        ],
        "shots": [
            {
                "second": shot.second,
                "background": shot.background,
                "characters": list(shot.characters),
                "sprite_copies": shot.sprite_copies,
                "props": list(shot.props),
            }
            for shot in shots
        ],
    }


def _write_json_atomically(path: Path, payload: dict[str, object]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)
