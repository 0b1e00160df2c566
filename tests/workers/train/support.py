"""Detection examples drawn from the demo world, and a fast training config for the stock tiny model."""

from pathlib import Path

from workers.demo import DemoWorldConfig, generate_demo_world, plan_demo_world, render_shot_frame
from workers.train import SFTConfig, TrainExample
from workers.vlm.prompts import CharacterCard


def demo_detection_set(config: DemoWorldConfig, folder: Path) -> tuple[list[CharacterCard], list[TrainExample]]:
    """The roster (names, descriptions, reference images) and one gold frame per shot, exactly as the
    video shows it, labelled with the shot's ground truth."""
    world = generate_demo_world(config, folder / "world")
    frames = folder / "frames"
    frames.mkdir(exist_ok=True)
    examples = []
    for plan in plan_demo_world(config):
        path = frames / f"shot-{plan.shot.second:04d}.png"
        render_shot_frame(plan, config).save(path)
        examples.append(TrainExample(f"shot-{plan.shot.second}", path, plan.shot.characters))
    roster = [CharacterCard(c.name, c.description, c.reference_paths) for c in world.characters]
    return roster, examples


def fast_config(model: Path, output_dir: Path, **overrides) -> SFTConfig:
    """Seconds per run: tiny images, a few examples, a high learning rate so that a step changes answers."""
    settings = dict(
        base_model=str(model),
        output_dir=str(output_dir),
        rank=8,
        alpha=16,
        dropout=0.1,  # exercises the random state that checkpoints must restore
        epochs=3,
        learning_rate=5e-3,
        batch_size=3,
        warmup_ratio=0.0,
        reference_max_pixels=56 * 56,
        target_max_pixels=112 * 64,
        max_new_tokens=12,
        eval_batch_size=4,
        eval_before_training=False,
    )
    return SFTConfig(**{**settings, **overrides})
