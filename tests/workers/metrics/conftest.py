from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from workers.vlm.prompts import CharacterCard


@pytest.fixture(scope="session")
def frames(tmp_path_factory) -> list[Path]:
    """Four distinct frames: a colour field with a block in a different place each time."""
    folder = tmp_path_factory.mktemp("metric-frames")
    paths = []
    for index in range(4):
        path = folder / f"frame{index}.jpg"
        image = Image.new("RGB", (320, 180), (60 + index * 50, 150, 220 - index * 40))
        ImageDraw.Draw(image).rectangle((index * 60, 40, index * 60 + 80, 160), fill=(230, 40 * index, 50))
        image.save(path, quality=90)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def cards(tmp_path_factory) -> list[CharacterCard]:
    folder = tmp_path_factory.mktemp("metric-roster")
    roster = []
    for name, color in [("Victor", (30, 40, 120)), ("Ellie", (230, 80, 90))]:
        path = folder / f"{name}.png"
        Image.new("RGB", (64, 64), color).save(path)
        roster.append(
            CharacterCard(name=name, description=f"{name}, drawn as a {color} square.", reference_paths=(path,))
        )
    return roster
