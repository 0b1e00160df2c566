from pathlib import Path

import pytest

from tests.workers.train.support import demo_detection_set
from workers.demo import DemoWorldConfig
from workers.train import TrainExample
from workers.vlm.prompts import CharacterCard
from workers.vlm.tiny import build_tiny_qwen2_5_vl

SMALL_WORLD = DemoWorldConfig(seconds=10, fps=1, width=112, height=64, seed=3, reference_size=64)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("train-models") / "qwen")


@pytest.fixture(scope="session")
def varied_tiny_model(tmp_path_factory) -> Path:
    """The stock tiny model's answers are one constant string for every frame (after training too);
    with its weights redrawn at a larger std (a test-only builder option) answers vary by frame."""
    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("train-models") / "varied-qwen", init_std=0.2)


@pytest.fixture(scope="session")
def small_set(tmp_path_factory) -> tuple[list[CharacterCard], list[TrainExample], list[TrainExample]]:
    """Roster, 7 training frames and 3 validation frames of a 10-second demo world."""
    roster, examples = demo_detection_set(SMALL_WORLD, tmp_path_factory.mktemp("train-world"))
    return roster, examples[:7], examples[7:]
