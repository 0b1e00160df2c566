"""The drawn assets of the demo world: character sprites and backgrounds, all made with Pillow shapes.

Characters are written once in a 100×100 unit box (feet on the bottom edge, facing right) and
rendered at any pixel size with 2× supersampling, so a sprite looks the same in a 256 px reference
image and as a 20 px figure in a 160×96 frame. Every character differs from the others in colour
AND silhouette AND accessory, so that a small vision model can tell them apart.

Backgrounds are drawn at the frame's size from a name and a variant seed; the variant moves the
decorations (clouds, windows, trees) so that two scenes in the same place are similar, not identical.
"""

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageOps

Colour = tuple[int, int, int]
Box = tuple[float, float, float, float]
Point = tuple[float, float]

UNIT_BOX = 100.0
SUPERSAMPLING = 2  # drawn at twice the size and shrunk: anti-aliased edges without a vector renderer
OUTLINE: Colour = (34, 26, 40)

SPRITE = "Sprite"  # the character that always appears as a group of identical copies


# --- drawing in units -------------------------------------------------------------------------------------------


class UnitPen:
    """Draws shapes given in the 100×100 unit box onto a square RGBA image of any size, with cartoon outlines."""

    def __init__(self, image: Image.Image):
        self._draw = ImageDraw.Draw(image)
        self._scale = image.width / UNIT_BOX
        self._outline_px = max(2, round(self._scale * 1.8))

    def _px(self, points: Sequence[float]) -> list[float]:
        return [value * self._scale for value in points]

    def _line_px(self, width_units: float) -> int:
        return max(1, round(width_units * self._scale))

    def ellipse(self, box: Box, fill: Colour, outline: bool = True) -> None:
        self._draw.ellipse(self._px(box), fill=fill, outline=OUTLINE if outline else None, width=self._outline_px)

    def circle(self, centre: Point, radius: float, fill: Colour, outline: bool = True) -> None:
        x, y = centre
        self.ellipse((x - radius, y - radius, x + radius, y + radius), fill, outline)

    def rect(self, box: Box, fill: Colour, radius: float = 0.0, outline: bool = True) -> None:
        self._draw.rounded_rectangle(
            self._px(box),
            radius=radius * self._scale,
            fill=fill,
            outline=OUTLINE if outline else None,
            width=self._outline_px,
        )

    def polygon(self, points: Sequence[Point], fill: Colour, outline: bool = True) -> None:
        flat = [coordinate * self._scale for point in points for coordinate in point]
        self._draw.polygon(flat, fill=fill, outline=OUTLINE if outline else None, width=self._outline_px)

    def line(self, points: Sequence[Point], fill: Colour, width: float) -> None:
        flat = [coordinate * self._scale for point in points for coordinate in point]
        self._draw.line(flat, fill=fill, width=self._line_px(width), joint="curve")

    def limb(self, start: Point, end: Point, fill: Colour, width: float = 5.0) -> None:
        """An outlined stick arm or leg: a dark line with a thinner coloured line on top."""
        self.line([start, end], OUTLINE, width + 2.4)
        self.line([start, end], fill, width)

    def eye(self, centre: Point, radius: float, look: Point = (0.35, 0.0)) -> None:
        """A white eye with a pupil nudged towards `look`, so every character faces right when drawn."""
        self.circle(centre, radius, (255, 255, 255))
        x, y = centre
        self.circle((x + look[0] * radius, y + look[1] * radius), radius * 0.5, (20, 20, 30), outline=False)

    def dot(self, centre: Point, radius: float, fill: Colour = (20, 20, 30)) -> None:
        self.circle(centre, radius, fill, outline=False)

    def smile(self, box: Box, width: float = 2.0) -> None:
        self._draw.arc(self._px(box), start=20, end=160, fill=OUTLINE, width=self._line_px(width))


def star_points(centre: Point, outer: float, inner: float, points: int = 5, rotation: float = -90.0) -> list[Point]:
    x, y = centre
    corners: list[Point] = []
    for index in range(points * 2):
        radius = outer if index % 2 == 0 else inner
        angle = math.radians(rotation + index * 180.0 / points)
        corners.append((x + radius * math.cos(angle), y + radius * math.sin(angle)))
    return corners


def teardrop_points(tip: Point, centre: Point, radius: float, steps: int = 28) -> list[Point]:
    """A single outline for a drop pointing up: the tip, then the circle's arc between the two tangent points."""
    distance = math.dist(tip, centre)
    half_angle = math.degrees(math.acos(radius / distance))
    start, end = -90.0 + half_angle, 270.0 - half_angle  # clockwise from the right tangent, under the bottom
    arc = [
        (
            centre[0] + radius * math.cos(math.radians(start + (end - start) * step / steps)),
            centre[1] + radius * math.sin(math.radians(start + (end - start) * step / steps)),
        )
        for step in range(steps + 1)
    ]
    return [tip, *arc]


# --- the characters --------------------------------------------------------------------------------------------


def _draw_ellie(pen: UnitPen, pose: int) -> None:
    coral, dark_coral, yellow = (255, 122, 108), (214, 84, 76), (255, 212, 38)
    pen.limb((42, 84), (40, 97), dark_coral)
    pen.limb((58, 84), (60, 97), dark_coral)
    pen.limb((28, 62), (16, 74), coral)
    pen.limb((72, 62), (86, 44) if pose else (84, 74), coral)
    pen.circle((50, 62), 27, coral)
    pen.eye((54, 56), 7)
    pen.eye((68, 56), 6)
    pen.smile((52, 62, 70, 74))
    # The bow: two wings and a knot, on top of the head.
    pen.polygon([(50, 35), (35, 24), (35, 44)], yellow)
    pen.polygon([(50, 35), (65, 24), (65, 44)], yellow)
    pen.circle((50, 35), 5, yellow)


def _draw_victor(pen: UnitPen, pose: int) -> None:
    navy, black, red, skin = (36, 58, 140), (26, 26, 32), (224, 36, 44), (246, 220, 190)
    pen.rect((38, 86, 46, 98), black)
    pen.rect((54, 86, 62, 98), black)
    pen.limb((35, 56), (26, 78), navy)
    pen.limb((65, 56), (80, 36) if pose else (74, 78), navy)
    pen.rect((34, 24, 66, 90), navy, radius=4)
    pen.rect((40, 28, 66, 46), skin, radius=3)  # the face window, shifted right: he faces right
    pen.eye((50, 35), 4)
    pen.eye((60, 35), 4)
    pen.line([(50, 42), (62, 42)], black, 2.5)  # moustache
    pen.polygon([(50, 54), (39, 47), (39, 61)], red)  # bow tie
    pen.polygon([(50, 54), (61, 47), (61, 61)], red)
    pen.rect((25, 19, 75, 25), black)  # top hat: brim, crown, band
    pen.rect((35, 1, 65, 22), black)
    pen.rect((35, 14, 65, 18), (120, 120, 130), outline=False)


def _draw_sprite(pen: UnitPen, pose: int) -> None:
    lime, wing, orange = (140, 232, 40), (186, 226, 255), (255, 140, 0)
    wing_top = 16 if pose else 30
    pen.ellipse((6, wing_top, 38, wing_top + 26), wing)
    pen.ellipse((62, wing_top, 94, wing_top + 26), wing)
    pen.polygon(teardrop_points((50, 8), (50, 66), 26), lime)
    pen.circle((50, 10), 6, orange)  # the glowing tip
    pen.eye((52, 62), 6)
    pen.eye((65, 62), 5)
    pen.smile((50, 68, 66, 80))


def _draw_bruno(pen: UnitPen, pose: int) -> None:
    brown, dark_brown, tan, orange = (140, 84, 44), (96, 56, 28), (222, 184, 135), (255, 138, 0)
    pen.ellipse((20, 86, 42, 99), dark_brown)
    pen.ellipse((58, 86, 80, 99), dark_brown)
    pen.circle((22, 30), 11, brown)  # ears behind the head
    pen.circle((78, 30), 11, brown)
    pen.circle((22, 30), 5, tan, outline=False)
    pen.circle((78, 30), 5, tan, outline=False)
    if pose:
        pen.limb((84, 50), (96, 30), brown, width=8)
    pen.rect((10, 28, 90, 93), brown, radius=22)
    pen.ellipse((52, 50, 82, 72), tan)  # muzzle, on the right: he faces right
    pen.ellipse((66, 52, 76, 59), (20, 20, 30), outline=False)
    pen.eye((50, 44), 5)
    pen.eye((70, 42), 5)
    pen.rect((10, 74, 90, 83), orange, radius=3)  # the scarf and its tail
    pen.polygon([(22, 80), (32, 80), (30, 97), (18, 95)], orange)


def _draw_mira(pen: UnitPen, pose: int) -> None:
    purple, dark_purple, skin, gold = (140, 64, 204), (92, 36, 150), (255, 224, 192), (255, 198, 0)
    pen.limb((32, 64), (18, 76), purple)
    wand_hand = (86, 40) if pose else (84, 74)
    pen.limb((68, 64), wand_hand, purple)
    if pose:
        pen.line([wand_hand, (92, 28)], (120, 80, 40), 2.5)
        pen.polygon(star_points((93, 26), 6, 2.6), gold)
    pen.polygon([(50, 12), (18, 97), (82, 97)], purple)
    pen.polygon([(26, 86), (74, 86), (79, 97), (21, 97)], dark_purple)  # hem
    pen.circle((55, 58), 12, skin)
    pen.eye((54, 56), 3.4)
    pen.eye((63, 56), 3.4)
    pen.smile((52, 60, 64, 67), width=1.6)
    pen.polygon(star_points((50, 11), 11, 4.6), gold)


def _draw_tock(pen: UnitPen, pose: int) -> None:
    grey, light_grey, black, red, cyan = (128, 134, 146), (186, 192, 202), (30, 30, 36), (230, 30, 30), (60, 230, 255)
    pen.rect((36, 88, 45, 98), black)
    pen.rect((58, 88, 67, 98), black)
    pen.limb((28, 60), (16, 80), grey)
    pen.limb((76, 60), (90, 40) if pose else (88, 80), grey)
    pen.line([(52, 18), (52, 6)], black, 2.0)  # antenna with its red bulb
    pen.circle((52, 6), 5, red)
    pen.rect((28, 50, 76, 90), grey, radius=3)
    pen.rect((34, 18, 70, 48), light_grey, radius=3)
    pen.rect((46, 27, 54, 35), cyan)
    pen.rect((59, 27, 67, 35), cyan)
    pen.line([(48, 42), (64, 42)], black, 2.0)
    pen.circle((52, 70), 13, (255, 255, 255))  # clock face with hands at three o'clock
    pen.line([(52, 70), (52, 60)], black, 2.2)
    pen.line([(52, 70), (60, 70)], black, 2.2)


def _draw_pip(pen: UnitPen, pose: int) -> None:
    yellow, orange, blue = (255, 222, 36), (255, 140, 20), (40, 90, 220)
    pen.limb((46, 88), (44, 98), orange, width=3)
    pen.limb((60, 88), (62, 98), orange, width=3)
    pen.circle((54, 76), 19, yellow)
    wing = (30, 62, 46, 76) if pose else (32, 72, 48, 86)
    pen.ellipse(wing, (240, 200, 20))
    pen.polygon([(71, 72), (85, 77), (71, 82)], orange)
    pen.eye((63, 70), 4.2)
    # The cap: a dome and a peak pointing forward.
    pen.polygon([(38, 66), (40, 56), (48, 52), (60, 52), (68, 56), (70, 66)], blue)
    pen.rect((62, 62, 84, 67), blue, radius=2)


def _draw_luna(pen: UnitPen, pose: int) -> None:
    cyan, black = (30, 206, 226), (22, 22, 28)
    tilt = -80.0 if pose else -90.0
    pen.polygon(star_points((50, 60), 42, 19, rotation=tilt), cyan)
    pen.rect((38, 48, 50, 57), black, radius=3)  # sunglasses
    pen.rect((54, 48, 66, 57), black, radius=3)
    pen.line([(50, 51), (54, 51)], black, 2.0)
    pen.smile((42, 58, 62, 70), width=2.2)


DrawCharacter = Callable[[UnitPen, int], None]


@dataclass(frozen=True)
class CharacterSpec:
    name: str
    description: str
    draw: DrawCharacter
    flies: bool  # flying characters are placed in the sky, not on the ground


ROSTER: tuple[CharacterSpec, ...] = (
    CharacterSpec(
        "Ellie",
        "Ellie is a round coral-pink ball with big white eyes, short legs and a yellow bow on top of her head.",
        _draw_ellie,
        flies=False,
    ),
    CharacterSpec(
        "Victor",
        "Victor is a tall navy-blue rectangle wearing a black top hat, a red bow tie and a small black moustache.",
        _draw_victor,
        flies=False,
    ),
    CharacterSpec(
        SPRITE,
        "Sprite is a tiny lime-green teardrop with pale-blue wings and a glowing orange tip; "
        "Sprites always appear in groups of two to five identical copies, usually flying.",
        _draw_sprite,
        flies=True,
    ),
    CharacterSpec(
        "Bruno",
        "Bruno is a wide, chunky brown bear with two round ears, a tan muzzle and an orange scarf.",
        _draw_bruno,
        flies=False,
    ),
    CharacterSpec(
        "Mira",
        "Mira is a purple cone-shaped figure with a small round face and a golden star on the tip of her pointed head.",
        _draw_mira,
        flies=False,
    ),
    CharacterSpec(
        "Tock",
        "Tock is a grey boxy robot with a square head, an antenna topped by a red bulb and a clock face on its chest.",
        _draw_tock,
        flies=False,
    ),
    CharacterSpec(
        "Pip",
        "Pip is a small yellow chick with a round body, an orange beak, orange legs and a blue cap.",
        _draw_pip,
        flies=False,
    ),
    CharacterSpec(
        "Luna",
        "Luna is a cyan five-pointed star wearing black sunglasses and a wide smile.",
        _draw_luna,
        flies=False,
    ),
)

CHARACTER_NAMES: tuple[str, ...] = tuple(spec.name for spec in ROSTER)
_SPECS_BY_NAME = {spec.name: spec for spec in ROSTER}


def character_spec(name: str) -> CharacterSpec:
    try:
        return _SPECS_BY_NAME[name]
    except KeyError:
        raise ValueError(f"Unknown demo character {name!r}; the roster is {', '.join(CHARACTER_NAMES)}.") from None


def render_character(name: str, box_px: int, pose: int = 0, mirrored: bool = False) -> Image.Image:
    """The character as a transparent RGBA square `box_px` wide, feet on the bottom edge."""
    supersampled = Image.new("RGBA", (box_px * SUPERSAMPLING, box_px * SUPERSAMPLING), (0, 0, 0, 0))
    character_spec(name).draw(UnitPen(supersampled), pose)
    image = supersampled.resize((box_px, box_px), Image.Resampling.LANCZOS)
    return ImageOps.mirror(image) if mirrored else image


# --- the backgrounds -------------------------------------------------------------------------------------------


def _vertical_gradient(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], top: Colour, bottom: Colour) -> None:
    x0, y0, x1, y1 = box
    rows = max(1, y1 - y0)
    for row in range(rows):
        mix = row / max(1, rows - 1)
        colour = tuple(round(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True))
        draw.line([(x0, y0 + row), (x1, y0 + row)], fill=colour)


class _Canvas:
    """A background being drawn, with coordinates given as fractions of the frame so any size works."""

    def __init__(self, width: int, height: int, variant: int):
        self.image = Image.new("RGB", (width, height))
        self.draw = ImageDraw.Draw(self.image)
        self.width, self.height = width, height
        self.rng = random.Random(variant)

    def x(self, fraction: float) -> int:
        return round(fraction * self.width)

    def y(self, fraction: float) -> int:
        return round(fraction * self.height)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        return self.x(x0), self.y(y0), self.x(x1), self.y(y1)

    def gradient(self, y0: float, y1: float, top: Colour, bottom: Colour) -> None:
        _vertical_gradient(self.draw, (0, self.y(y0), self.width, self.y(y1)), top, bottom)

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, fill: Colour) -> None:
        self.draw.ellipse(self.box(x0, y0, x1, y1), fill=fill)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: Colour) -> None:
        self.draw.rectangle(self.box(x0, y0, x1, y1), fill=fill)

    def polygon(self, points: Sequence[Point], fill: Colour) -> None:
        self.draw.polygon([(self.x(px), self.y(py)) for px, py in points], fill=fill)

    def circle(self, cx: float, cy: float, radius_of_height: float, fill: Colour) -> None:
        radius = radius_of_height * self.height
        x, y = cx * self.width, cy * self.height
        self.draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)

    def polyline(self, points: Sequence[Point], fill: Colour, width: float) -> None:
        pixels = [(self.x(px), self.y(py)) for px, py in points]
        self.draw.line(pixels, fill=fill, width=max(2, self.x(width)), joint="curve")

    def cloud(self, cx: float, cy: float, size: float, fill: Colour = (255, 255, 255)) -> None:
        for dx, dy, radius in ((-0.9, 0.2, 0.6), (0.0, 0.0, 0.8), (0.9, 0.2, 0.6), (0.4, 0.35, 0.55)):
            self.circle(cx + dx * size * self.height / self.width, cy + dy * size, radius * size, fill)


def _meadow(canvas: _Canvas) -> None:
    rng = canvas.rng
    canvas.gradient(0.0, 0.7, (96, 170, 250), (200, 230, 255))
    canvas.circle(0.84, 0.16, 0.08, (255, 226, 80))
    for _ in range(3):
        canvas.cloud(rng.uniform(0.1, 0.7), rng.uniform(0.1, 0.3), rng.uniform(0.05, 0.08))
    canvas.ellipse(-0.3, 0.48, 0.6, 1.3, (130, 204, 96))
    canvas.ellipse(0.35, 0.52, 1.4, 1.4, (108, 188, 82))
    canvas.gradient(0.72, 1.0, (104, 184, 74), (68, 146, 56))
    for _ in range(30):
        colour = rng.choice([(255, 255, 255), (255, 230, 60), (240, 80, 90)])
        canvas.circle(rng.uniform(0, 1), rng.uniform(0.74, 0.99), 0.008, colour)


def _forest(canvas: _Canvas) -> None:
    rng = canvas.rng
    canvas.gradient(0.0, 0.78, (36, 82, 52), (88, 140, 80))
    for _ in range(10):  # far trunks, thin and pale
        x = rng.uniform(0, 1)
        canvas.rect(x, 0.1, x + 0.012, 0.78, (70, 90, 60))
    for _ in range(14):  # the canopy
        canvas.circle(rng.uniform(-0.05, 1.05), rng.uniform(-0.05, 0.22), rng.uniform(0.12, 0.2), (22, 70, 36))
    canvas.gradient(0.76, 1.0, (92, 70, 40), (58, 42, 26))
    for _ in range(3):  # near trunks, thick and dark
        x = rng.uniform(0, 0.95)
        canvas.rect(x, 0.0, x + 0.05, 0.84, (80, 52, 30))
    for _ in range(5):
        x, y = rng.uniform(0.05, 0.95), rng.uniform(0.8, 0.96)
        canvas.rect(x - 0.004, y, x + 0.004, y + 0.03, (240, 230, 210))
        canvas.ellipse(x - 0.015, y - 0.02, x + 0.015, y + 0.01, (210, 40, 40))


def _night_street(canvas: _Canvas) -> None:
    rng = canvas.rng
    canvas.gradient(0.0, 0.72, (8, 12, 38), (44, 40, 86))
    for _ in range(50):
        canvas.circle(rng.uniform(0, 1), rng.uniform(0, 0.45), 0.004, (240, 240, 255))
    canvas.circle(rng.uniform(0.08, 0.3), 0.14, 0.07, (250, 240, 180))
    x = -0.02
    while x < 1.0:  # a row of buildings with lit and dark windows
        building_width, top = rng.uniform(0.1, 0.2), rng.uniform(0.25, 0.5)
        canvas.rect(x, top, x + building_width, 0.74, rng.choice([(36, 34, 58), (50, 44, 70), (30, 40, 60)]))
        for wx in range(int(building_width / 0.04)):
            for wy in range(int((0.7 - top) / 0.07)):
                lit = rng.random() < 0.55
                left, upper = x + 0.015 + wx * 0.04, top + 0.04 + wy * 0.07
                canvas.rect(left, upper, left + 0.018, upper + 0.035, (255, 214, 110) if lit else (20, 20, 36))
        x += building_width + 0.01
    canvas.rect(0.0, 0.72, 1.0, 0.78, (96, 96, 108))
    canvas.gradient(0.78, 1.0, (60, 60, 72), (40, 40, 50))
    for dash in range(8):
        canvas.rect(dash * 0.14, 0.9, dash * 0.14 + 0.07, 0.915, (230, 230, 210))
    for lamp_x in (0.2, 0.62):
        canvas.rect(lamp_x, 0.3, lamp_x + 0.01, 0.76, (30, 30, 36))
        canvas.circle(lamp_x + 0.005, 0.3, 0.04, (255, 236, 150))


def _living_room(canvas: _Canvas) -> None:
    rng = canvas.rng
    canvas.gradient(0.0, 0.72, (238, 218, 182), (222, 196, 156))
    for stripe in range(0, 20, 2):
        canvas.rect(stripe * 0.05, 0.0, stripe * 0.05 + 0.02, 0.72, (230, 208, 170))
    canvas.rect(0.06, 0.1, 0.3, 0.5, (250, 250, 245))  # window onto a blue sky
    canvas.gradient(0.12, 0.48, (110, 180, 250), (190, 225, 255))
    canvas.rect(0.06, 0.1, 0.075, 0.5, (250, 250, 245))
    canvas.rect(0.285, 0.1, 0.3, 0.5, (250, 250, 245))
    canvas.rect(0.17, 0.1, 0.185, 0.5, (250, 250, 245))
    canvas.rect(0.6, 0.14, 0.76, 0.36, (120, 80, 40))  # a framed picture
    canvas.rect(0.615, 0.165, 0.745, 0.335, rng.choice([(110, 170, 90), (230, 150, 90), (90, 140, 200)]))
    canvas.rect(0.44, 0.44, 0.96, 0.66, (176, 56, 60))  # sofa behind everyone
    canvas.rect(0.42, 0.52, 0.48, 0.72, (150, 44, 48))
    canvas.rect(0.92, 0.52, 0.98, 0.72, (150, 44, 48))
    canvas.gradient(0.72, 1.0, (170, 118, 72), (136, 90, 52))
    for plank in range(1, 6):
        canvas.rect(0.0, 0.72 + plank * 0.05, 1.0, 0.72 + plank * 0.05 + 0.004, (110, 72, 40))
    canvas.ellipse(0.18, 0.84, 0.82, 0.99, (60, 110, 130))


def _beach(canvas: _Canvas) -> None:
    rng = canvas.rng
    canvas.gradient(0.0, 0.5, (80, 196, 250), (190, 236, 255))
    canvas.circle(rng.uniform(0.55, 0.9), 0.15, 0.07, (255, 240, 120))
    canvas.cloud(rng.uniform(0.1, 0.5), 0.15, 0.05)
    canvas.gradient(0.5, 0.68, (20, 110, 196), (40, 160, 214))
    for _ in range(9):
        x, y = rng.uniform(0, 0.95), rng.uniform(0.53, 0.66)
        canvas.rect(x, y, x + 0.05, y + 0.006, (230, 245, 255))
    canvas.gradient(0.68, 1.0, (248, 224, 156), (232, 198, 126))
    palm_x = rng.uniform(0.8, 0.9)
    for segment in range(14):  # a leaning palm trunk of overlapping rings
        canvas.circle(palm_x + segment * 0.0035, 0.95 - segment * 0.04, 0.024, (140, 96, 50))
    top_x = palm_x + 0.045
    for dx, dy in ((-0.12, 0.1), (0.1, 0.12), (-0.08, -0.02), (0.08, -0.03)):
        canvas.polygon([(top_x, 0.42), (top_x + dx, 0.42 + dy), (top_x + dx * 0.5, 0.42 + dy * 0.2)], (40, 150, 60))
    umbrella_x = rng.uniform(0.08, 0.2)
    canvas.rect(umbrella_x - 0.004, 0.55, umbrella_x + 0.004, 0.9, (90, 90, 90))
    for stripe in range(4):
        left = umbrella_x - 0.1 + stripe * 0.05
        colour = (230, 40, 40) if stripe % 2 else (250, 250, 250)
        canvas.polygon([(umbrella_x, 0.5), (left, 0.6), (left + 0.05, 0.6)], colour)


def _snowy_mountain(canvas: _Canvas) -> None:
    rng = canvas.rng
    canvas.gradient(0.0, 0.7, (160, 192, 228), (226, 236, 246))
    peaks = sorted(rng.uniform(0.0, 1.0) for _ in range(3))
    for peak in peaks:
        height = rng.uniform(0.15, 0.3)
        canvas.polygon([(peak - 0.3, 0.72), (peak, height), (peak + 0.3, 0.72)], (108, 118, 140))
        # The snow cap is the top third of the same triangle, with a zigzag lower edge.
        cap_y, cap_half = height + (0.72 - height) * 0.33, 0.3 * 0.33
        zigzag = [(peak + cap_half * k / 2, cap_y + (0.03 if k % 2 else 0.0)) for k in range(2, -3, -1)]
        canvas.polygon([(peak, height), *zigzag], (250, 250, 255))
    canvas.gradient(0.7, 1.0, (246, 249, 253), (214, 226, 240))
    for side in (rng.uniform(0.0, 0.12), rng.uniform(0.88, 1.0)):
        for tier in range(3):
            top = 0.4 + tier * 0.1
            canvas.polygon([(side - 0.06, top + 0.16), (side, top), (side + 0.06, top + 0.16)], (28, 88, 56))
    for _ in range(40):
        canvas.circle(rng.uniform(0, 1), rng.uniform(0, 1), 0.005, (255, 255, 255))


def _underwater(canvas: _Canvas) -> None:
    rng = canvas.rng
    canvas.gradient(0.0, 0.8, (0, 110, 160), (0, 46, 96))
    canvas.gradient(0.8, 1.0, (206, 186, 126), (176, 156, 100))
    for _ in range(6):  # swaying seaweed
        x = rng.uniform(0, 1)
        points = [(x + 0.012 * math.sin(step), 0.98 - step * 0.06) for step in range(8)]
        canvas.polyline(points, (36, 150, 70), width=0.012)
    for _ in range(4):
        x = rng.uniform(0.05, 0.95)
        canvas.ellipse(x - 0.04, 0.82, x + 0.04, 0.92, rng.choice([(255, 120, 140), (255, 160, 80)]))
    for _ in range(5):  # small fish
        x, y = rng.uniform(0.05, 0.9), rng.uniform(0.1, 0.6)
        canvas.ellipse(x, y, x + 0.05, y + 0.04, (255, 170, 40))
        canvas.polygon([(x, y + 0.02), (x - 0.02, y), (x - 0.02, y + 0.04)], (255, 170, 40))
    for _ in range(18):
        canvas.circle(rng.uniform(0, 1), rng.uniform(0, 0.8), rng.uniform(0.005, 0.015), (170, 220, 240))


def _desert(canvas: _Canvas) -> None:
    rng = canvas.rng
    canvas.gradient(0.0, 0.66, (250, 130, 80), (255, 214, 150))
    canvas.circle(rng.uniform(0.2, 0.8), 0.5, 0.14, (255, 236, 170))
    for _ in range(2):  # flat-topped mesas
        x = rng.uniform(0.0, 0.8)
        canvas.polygon([(x, 0.68), (x + 0.04, 0.36), (x + 0.2, 0.36), (x + 0.25, 0.68)], (168, 78, 50))
    canvas.ellipse(-0.3, 0.6, 0.7, 1.1, (236, 184, 112))
    canvas.ellipse(0.3, 0.62, 1.4, 1.1, (226, 170, 100))
    canvas.gradient(0.74, 1.0, (236, 190, 120), (214, 162, 98))
    for _ in range(2):  # cacti with two arms
        x = rng.uniform(0.05, 0.95)
        green = (56, 140, 70)
        canvas.rect(x - 0.015, 0.5, x + 0.015, 0.8, green)
        canvas.rect(x - 0.05, 0.58, x - 0.035, 0.68, green)
        canvas.rect(x - 0.05, 0.66, x, 0.68, green)
        canvas.rect(x + 0.035, 0.55, x + 0.05, 0.64, green)
        canvas.rect(x, 0.62, x + 0.05, 0.64, green)


BACKGROUNDS: dict[str, Callable[[_Canvas], None]] = {
    "meadow": _meadow,
    "forest": _forest,
    "night_street": _night_street,
    "living_room": _living_room,
    "beach": _beach,
    "snowy_mountain": _snowy_mountain,
    "underwater": _underwater,
    "desert": _desert,
}
BACKGROUND_NAMES: tuple[str, ...] = tuple(BACKGROUNDS)


def render_background(name: str, width: int, height: int, variant: int) -> Image.Image:
    """An RGB background; the same name, size and variant always give the same pixels."""
    if name not in BACKGROUNDS:
        raise ValueError(f"Unknown demo background {name!r}; expected one of {', '.join(BACKGROUND_NAMES)}.")
    canvas = _Canvas(width, height, variant)
    BACKGROUNDS[name](canvas)
    return canvas.image
