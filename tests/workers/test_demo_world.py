"""The synthetic demo cartoon: ground truth, determinism, video timing and reference images."""

import itertools
import json
import math
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from workers.demo import (
    CHARACTER_NAMES,
    SPRITE,
    DemoWorldConfig,
    DemoWorldResult,
    generate_demo_world,
    plan_demo_world,
    render_shot_frame,
)
from workers.demo.__main__ import main
from workers.demo.world import REFERENCE_BACKGROUND

# Small and fast; seed 1 gives two places, an empty opening shot, a returning scene and Sprite flocks.
SMALL = DemoWorldConfig(seconds=12, fps=2, width=160, height=96, seed=1, reference_size=96)
# H.264 is lossy and 160×96 frames are mostly edges, so a correct frame still differs by a few levels.
MAX_MEAN_ABS_DIFF = 8.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> DemoWorldResult:
    return generate_demo_world(SMALL, tmp_path_factory.mktemp("world"))


def _manifest(result: DemoWorldResult) -> dict:
    return json.loads(result.manifest_path.read_text(encoding="utf-8"))


def _decoded_frames(video_path: Path) -> list[tuple[float, Image.Image]]:
    with av.open(str(video_path)) as container:
        return [(frame.time, frame.to_image()) for frame in container.decode(video=0)]


def _mean_abs_diff(first: Image.Image, second: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(first, second)).mean) / 3


# --- ground truth ------------------------------------------------------------------------------------------------


def test_manifest_matches_the_returned_shots(world: DemoWorldResult) -> None:
    manifest = _manifest(world)
    assert manifest["version"] == 2
    assert manifest["config"] == {
        "seconds": 12,
        "fps": 2,
        "width": 160,
        "height": 96,
        "characters": 6,
        "seed": 1,
        "reference_size": 96,
    }
    assert [shot["second"] for shot in manifest["shots"]] == list(range(SMALL.seconds))
    assert manifest["shots"] == [
        {
            "second": shot.second,
            "background": shot.background,
            "characters": list(shot.characters),
            "sprite_copies": shot.sprite_copies,
            "props": list(shot.props),
        }
        for shot in world.shots
    ]
    assert all(shot["props"] for shot in manifest["shots"])  # every scene has something for salient objects
    assert [character["name"] for character in manifest["characters"]] == [c.name for c in world.characters]
    assert world.video_path == world.manifest_path.parent / "demo_world.mp4"


def test_characters_come_from_the_roster_sorted_and_once(world: DemoWorldResult) -> None:
    roster = set(CHARACTER_NAMES[: SMALL.characters])
    assert sum(len(shot.characters) for shot in world.shots) >= len(world.shots) // 2  # the loop checks names
    assert [character.name for character in world.characters] == ["Ellie", "Victor", "Sprite", "Bruno", "Mira", "Tock"]
    for shot in world.shots:
        assert set(shot.characters) <= roster
        assert list(shot.characters) == sorted(set(shot.characters))


def test_sprite_is_drawn_as_a_flock_but_counted_once(world: DemoWorldResult) -> None:
    plans = plan_demo_world(SMALL)
    sprite_shots = [plan for plan in plans if SPRITE in plan.shot.characters]
    assert sprite_shots, "this config was chosen to include Sprite"
    for plan in plans:
        drawn = sum(1 for placement in plan.placements if placement.name == SPRITE)
        assert drawn == plan.shot.sprite_copies
        if SPRITE in plan.shot.characters:
            assert 2 <= plan.shot.sprite_copies <= 5
            assert plan.shot.characters.count(SPRITE) == 1
        else:
            assert plan.shot.sprite_copies == 0
        others = sorted(placement.name for placement in plan.placements if placement.name != SPRITE)
        assert others == [name for name in plan.shot.characters if name != SPRITE]


def test_some_shots_are_empty_and_most_have_one_to_three_characters(world: DemoWorldResult) -> None:
    assert not world.shots[0].characters, "the film opens on an establishing shot"
    assert any(len(shot.characters) >= 2 for shot in world.shots)


def test_default_world_has_the_intended_mix() -> None:
    shots = [plan.shot for plan in plan_demo_world(DemoWorldConfig())]
    assert len(shots) == 120
    empty = sum(1 for shot in shots if not shot.characters)
    assert 0.05 <= empty / len(shots) <= 0.2
    assert sum(1 for shot in shots if 1 <= len(shot.characters) <= 3) / len(shots) >= 0.75
    assert len({shot.background for shot in shots}) >= 6
    for name in CHARACTER_NAMES[:6]:
        assert sum(1 for shot in shots if name in shot.characters) >= 5, name
    # Recurring compositions: the same place with the same people comes back.
    compositions = [(shot.background, shot.characters) for shot in shots if shot.characters]
    assert len(set(compositions)) < len(compositions)


def test_a_shorter_world_is_the_start_of_a_longer_one() -> None:
    short = plan_demo_world(DemoWorldConfig(seconds=30))
    longer = plan_demo_world(DemoWorldConfig(seconds=120))
    assert short == longer[:30]


def test_more_characters_use_more_of_the_roster() -> None:
    shots = [plan.shot for plan in plan_demo_world(DemoWorldConfig(characters=8))]
    assert {name for shot in shots for name in shot.characters} == set(CHARACTER_NAMES)


# --- determinism -------------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_frames(world: DemoWorldResult, tmp_path: Path) -> None:
    again = generate_demo_world(SMALL, tmp_path)
    assert again.manifest_path.read_bytes() == world.manifest_path.read_bytes()
    for first, second in zip(world.characters, again.characters, strict=True):
        for first_path, second_path in zip(first.reference_paths, second.reference_paths, strict=True):
            assert first_path.read_bytes() == second_path.read_bytes()
    first_frames = _decoded_frames(world.video_path)
    second_frames = _decoded_frames(again.video_path)
    assert [time for time, _ in first_frames] == [time for time, _ in second_frames]
    for (_, first_image), (_, second_image) in zip(first_frames, second_frames, strict=True):
        assert first_image.tobytes() == second_image.tobytes()


def test_a_different_seed_gives_a_different_world(world: DemoWorldResult, tmp_path: Path) -> None:
    other = generate_demo_world(DemoWorldConfig(seconds=12, fps=2, width=160, height=96, seed=2), tmp_path)
    assert other.manifest_path.read_bytes() != world.manifest_path.read_bytes()
    assert other.shots != world.shots


# --- the video ---------------------------------------------------------------------------------------------------


def test_video_has_one_frame_per_tick_at_exact_times(world: DemoWorldResult) -> None:
    with av.open(str(world.video_path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (SMALL.width, SMALL.height)
        assert stream.frames == SMALL.seconds * SMALL.fps
        assert float(stream.duration * stream.time_base) == pytest.approx(SMALL.seconds)
    times = [time for time, _ in _decoded_frames(world.video_path)]
    assert len(times) == SMALL.seconds * SMALL.fps
    assert times == pytest.approx([index / SMALL.fps for index in range(len(times))], abs=1e-9)


def test_frame_sampled_at_each_second_shows_that_shot(world: DemoWorldResult) -> None:
    plans = plan_demo_world(SMALL)
    frames = _decoded_frames(world.video_path)
    expected = [render_shot_frame(plan, SMALL) for plan in plans]
    told_apart = 0
    for second, plan in enumerate(plans):
        # What a 1-fps sampler picks: the first frame at or after `second`.
        _, sampled = next((time, image) for time, image in frames if time >= second - 1e-9)
        own_diff = _mean_abs_diff(sampled, expected[second])
        assert own_diff < MAX_MEAN_ABS_DIFF, f"shot {second} ({plan.shot}) differs by {own_diff:.2f}"
        for other, other_expected in enumerate(expected):
            if _mean_abs_diff(other_expected, expected[second]) > 1.0:  # a visibly different shot
                assert _mean_abs_diff(sampled, other_expected) > own_diff, f"shot {second} looks like shot {other}"
                told_apart += 1
    assert told_apart >= len(plans), "the shots should look different from one another"


def test_frames_within_a_second_are_the_animated_shot(world: DemoWorldResult) -> None:
    plans = plan_demo_world(SMALL)
    for index, (_, image) in enumerate(_decoded_frames(world.video_path)):
        second, step = divmod(index, SMALL.fps)
        assert _mean_abs_diff(image, render_shot_frame(plans[second], SMALL, step)) < MAX_MEAN_ABS_DIFF


def test_progress_is_reported_for_every_shot(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    config = DemoWorldConfig(seconds=5, fps=1, width=64, height=64, reference_size=64)
    generate_demo_world(config, tmp_path, on_progress=lambda done, total: calls.append((done, total)))
    assert calls == [(done, 5) for done in range(1, 6)]


def _figure_mask(image: Image.Image) -> Image.Image:
    """White where a pixel is not the plain reference background."""
    background = Image.new("RGB", image.size, REFERENCE_BACKGROUND)
    return ImageChops.difference(image, background).convert("L").point(lambda level: 255 if level > 12 else 0)


def _figure_share(path: Path) -> float:
    with Image.open(path) as image:
        return ImageStat.Stat(_figure_mask(image.convert("RGB"))).mean[0] / 255


def _figure_colour(path: Path) -> tuple[float, ...]:
    """Mean colour of the character's pixels."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    return tuple(ImageStat.Stat(rgb, _figure_mask(rgb)).mean)


# --- reference images --------------------------------------------------------------------------------------------


def test_two_square_png_references_per_character(world: DemoWorldResult) -> None:
    out_dir = world.manifest_path.parent
    manifest_references = {character["name"]: character["references"] for character in _manifest(world)["characters"]}
    for character in world.characters:
        slug = character.name.lower()
        assert [path.name for path in character.reference_paths] == [f"{slug}_1.png", f"{slug}_2.png"]
        assert manifest_references[character.name] == [f"references/{slug}_1.png", f"references/{slug}_2.png"]
        for path in character.reference_paths:
            assert path.parent == out_dir / "references"
            with Image.open(path) as image:
                assert image.format == "PNG"
                assert image.size == (SMALL.reference_size, SMALL.reference_size)
                assert image.convert("RGB").getpixel((0, 0)) == REFERENCE_BACKGROUND
            assert 0.08 < _figure_share(path) < 0.8, f"{path.name} should show the character, large"


def test_descriptions_name_a_colour_and_sprite_says_it_comes_in_groups(world: DemoWorldResult) -> None:
    colours = ("pink", "blue", "green", "brown", "purple", "grey", "yellow", "cyan")
    for character in world.characters:
        assert character.name in character.description
        assert any(colour in character.description for colour in colours), character.description
    sprite = next(character for character in world.characters if character.name == SPRITE)
    assert "groups" in sprite.description


def test_characters_have_clearly_different_colours(tmp_path: Path) -> None:
    result = generate_demo_world(DemoWorldConfig(seconds=1, fps=1, width=64, height=64, characters=8), tmp_path)
    colours = {character.name: _figure_colour(character.reference_paths[0]) for character in result.characters}
    for (first, first_colour), (second, second_colour) in itertools.combinations(colours.items(), 2):
        assert math.dist(first_colour, second_colour) > 25, f"{first} and {second} look alike"


# --- configuration and command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"characters": 4}, "characters must be between 5 and 8"),
        ({"characters": 9}, "characters must be between 5 and 8"),
        ({"width": 161}, "must be even"),
        ({"height": 95}, "must be even"),
        ({"seconds": 0}, "seconds must be between"),
        ({"fps": 0}, "fps must be between"),
        ({"width": 32}, "width must be between"),
        ({"reference_size": 16}, "reference_size must be between"),
        ({"seed": -1}, "seed must be between"),
        ({"seconds": 2.5}, "seconds must be an integer"),
    ],
)
def test_config_rejects_out_of_range_values(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DemoWorldConfig(**overrides)


def test_render_shot_frame_rejects_a_step_outside_the_second() -> None:
    plan = plan_demo_world(SMALL)[0]
    with pytest.raises(ValueError, match="step must be between 0 and 1"):
        render_shot_frame(plan, SMALL, step=2)


def test_command_line_writes_the_world_and_summarises_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(tmp_path), "--seconds", "6", "--fps", "1", "--width", "96", "--height", "64", "--seed", "3"]
    assert main(args) == 0
    summary = capsys.readouterr().out.strip()
    assert "\n" not in summary
    assert "6 shots" in summary and "demo_world.mp4" in summary and "manifest.json" in summary
    assert "Ellie" in summary and "Tock" in summary
    assert (tmp_path / "demo_world.mp4").is_file()
    assert json.loads((tmp_path / "manifest.json").read_text())["config"]["seed"] == 3


def test_command_line_reports_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path), "--characters", "4"]) == 2
    assert "characters must be between 5 and 8" in capsys.readouterr().err
