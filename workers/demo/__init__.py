"""A deterministic synthetic cartoon (the "demo world") with exact ground truth of who appears when.

It stands in for a real film in the offline demo and in tests: one shot per second, named characters
drawn as distinct sprites, reference images per character and a JSON manifest of every shot.
Run `python -m workers.demo OUT_DIR` to write one.
"""

from workers.demo.sprites import BACKGROUND_NAMES, CHARACTER_NAMES, SPRITE
from workers.demo.world import (
    DemoCharacter,
    DemoShot,
    DemoWorldConfig,
    DemoWorldResult,
    ShotPlan,
    SpritePlacement,
    generate_demo_world,
    plan_demo_world,
    reference_images,
    render_shot_frame,
)

__all__ = [
    "BACKGROUND_NAMES",
    "CHARACTER_NAMES",
    "SPRITE",
    "DemoCharacter",
    "DemoShot",
    "DemoWorldConfig",
    "DemoWorldResult",
    "ShotPlan",
    "SpritePlacement",
    "generate_demo_world",
    "plan_demo_world",
    "reference_images",
    "render_shot_frame",
]
