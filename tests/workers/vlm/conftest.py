from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from workers.vlm.prompts import CharacterCard
from workers.vlm.tiny import build_tiny_internvl, build_tiny_qwen2_5_vl

# At the shipped init the toy models ignore the image (InternVL emits only newlines, i.e. "" once
# stripped): comparisons of decoding paths would compare empty strings. These weights are redrawn
# at a larger std (a test-only option of the builders) so greedy outputs are non-empty and vary.
VARIED_INIT_STD = 0.2


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("vlm-models")
    return {
        "qwen": build_tiny_qwen2_5_vl(folder / "qwen", init_std=VARIED_INIT_STD),
        "internvl": build_tiny_internvl(folder / "internvl", init_std=VARIED_INIT_STD),
    }


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Three characters with a reference each, and six frames."""
    folder = tmp_path_factory.mktemp("vlm-world")
    cards = []
    for index, (name, color) in enumerate(
        [("Ellie", (230, 80, 90)), ("Victor", (30, 40, 120)), ("Sprite", (120, 220, 60))]
    ):
        path = folder / f"{name}.png"
        image = Image.new("RGB", (256, 256), (245, 245, 240))
        ImageDraw.Draw(image).ellipse((60, 40 + index * 5, 200, 220), fill=color)
        image.save(path)
        cards.append(CharacterCard(name=name, description=f"{name} is a {color} blob.", reference_paths=(path,)))
    frames = []
    for index in range(6):
        path = folder / f"frame{index}.jpg"
        image = Image.new("RGB", (640, 360), (100 + index * 20, 160, 220))
        ImageDraw.Draw(image).rectangle((index * 50, 100, index * 50 + 120, 300), fill=(200, 30 * index, 40))
        image.save(path, quality=90)
        frames.append(path)
    return cards, frames
