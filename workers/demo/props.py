"""The demo world's props: the salient objects a caption names besides the characters.

Each scene places one or two props on the ground at the sides of the frame, where they stay for
the whole scene (a returning scene brings its props back). They are drawn big and in strong
colours so that a toy captioner looking at a small frame can still tell them apart.
"""

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw

from workers.demo.sprites import OUTLINE, UnitPen

DrawProp = Callable[[UnitPen], None]


def _red_balloon(pen: UnitPen) -> None:
    pen.line([(50, 62), (46, 80), (52, 100)], OUTLINE, 1.6)
    pen.ellipse((28, 8, 72, 62), (222, 46, 52))
    pen.ellipse((38, 16, 48, 28), (255, 150, 150), outline=False)


def _wooden_crate(pen: UnitPen) -> None:
    pen.rect((14, 40, 86, 100), (176, 118, 60))
    pen.line([(14, 40), (86, 100)], (120, 76, 36), 4)
    pen.line([(86, 40), (14, 100)], (120, 76, 36), 4)


def _blue_chest(pen: UnitPen) -> None:
    pen.rect((12, 52, 88, 100), (46, 92, 200))
    pen.rect((12, 36, 88, 56), (70, 120, 230), radius=10)
    pen.rect((44, 52, 56, 68), (250, 210, 60))


def _beach_ball(pen: UnitPen) -> None:
    pen.circle((50, 68), 31, (255, 255, 255))
    pen.polygon([(50, 37), (34, 44), (50, 99)], (240, 70, 60), outline=False)
    pen.polygon([(50, 37), (66, 44), (50, 99)], (60, 130, 240), outline=False)


def _green_umbrella(pen: UnitPen) -> None:
    pen.line([(50, 30), (50, 100)], (90, 60, 40), 4)
    pen.polygon([(10, 40), (50, 6), (90, 40)], (40, 170, 80))


def _yellow_lamp(pen: UnitPen) -> None:
    pen.rect((46, 30, 54, 100), (60, 60, 70))
    pen.circle((50, 22), 16, (255, 222, 60))


def _potted_cactus(pen: UnitPen) -> None:
    pen.polygon([(30, 72), (70, 72), (64, 100), (36, 100)], (200, 90, 50))
    pen.rect((42, 20, 58, 74), (60, 160, 70), radius=8)
    pen.rect((24, 38, 36, 60), (60, 160, 70), radius=6)
    pen.rect((64, 30, 76, 54), (60, 160, 70), radius=6)


def _orange_kite(pen: UnitPen) -> None:
    pen.polygon([(50, 4), (78, 34), (50, 70), (22, 34)], (250, 140, 30))
    pen.line([(50, 70), (44, 84), (56, 92), (50, 100)], OUTLINE, 1.6)


@dataclass(frozen=True)
class PropSpec:
    name: str  # how a caption names it: "a red balloon"
    draw: DrawProp


PROPS: tuple[PropSpec, ...] = (
    PropSpec("a red balloon", _red_balloon),
    PropSpec("a wooden crate", _wooden_crate),
    PropSpec("a blue treasure chest", _blue_chest),
    PropSpec("a striped beach ball", _beach_ball),
    PropSpec("a green umbrella", _green_umbrella),
    PropSpec("a yellow lamp", _yellow_lamp),
    PropSpec("a potted cactus", _potted_cactus),
    PropSpec("an orange kite", _orange_kite),
)
PROP_NAMES: tuple[str, ...] = tuple(spec.name for spec in PROPS)
_BY_NAME = {spec.name: spec for spec in PROPS}


def prop_spec(name: str) -> PropSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"Unknown demo prop {name!r}; expected one of {', '.join(PROP_NAMES)}.") from None


def render_prop(name: str, box_px: int) -> Image.Image:
    """The prop as a transparent RGBA square `box_px` wide, standing on the bottom edge."""
    supersampled = Image.new("RGBA", (box_px * 2, box_px * 2), (0, 0, 0, 0))
    prop_spec(name).draw(UnitPen(supersampled))
    return supersampled.resize((box_px, box_px), Image.Resampling.LANCZOS)


def draw_prop_shadow(shadows: ImageDraw.ImageDraw, centre_x: float, feet_y: float, box_px: int) -> None:
    half_width, half_height = box_px * 0.3, max(1.0, box_px * 0.04)
    shadows.ellipse(
        (centre_x - half_width, feet_y - half_height, centre_x + half_width, feet_y + half_height), fill=(0, 0, 0, 60)
    )
