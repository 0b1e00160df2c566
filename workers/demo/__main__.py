"""`python -m workers.demo OUT_DIR [--seconds N] [--fps N] [--width W] [--height H] [--characters N] [--seed S]`."""

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from workers.demo.world import DemoWorldConfig, DemoWorldResult, generate_demo_world

_DEFAULTS = DemoWorldConfig()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers.demo", description="Write the synthetic demo cartoon.")
    parser.add_argument("out_dir", type=Path, help="folder for demo_world.mp4, manifest.json and references/")
    parser.add_argument("--seconds", type=int, default=_DEFAULTS.seconds, help="shots, one per second")
    parser.add_argument("--fps", type=int, default=_DEFAULTS.fps, help="frames per second in the video")
    parser.add_argument("--width", type=int, default=_DEFAULTS.width, help="frame width in pixels (even)")
    parser.add_argument("--height", type=int, default=_DEFAULTS.height, help="frame height in pixels (even)")
    parser.add_argument("--characters", type=int, default=_DEFAULTS.characters, help="how many of the roster (5-8)")
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed)
    return parser.parse_args(argv)


def summarise(result: DemoWorldResult) -> str:
    """One line: where things went, how many shots, and how many shots each character is in."""
    appearances = Counter(name for shot in result.shots for name in shot.characters)
    per_character = ", ".join(f"{character.name} {appearances[character.name]}" for character in result.characters)
    empty = sum(1 for shot in result.shots if not shot.characters)
    return (
        f"demo world: {result.video_path} and {result.manifest_path}; {len(result.shots)} shots "
        f"({empty} empty); shots per character: {per_character}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        config = DemoWorldConfig(
            seconds=args.seconds,
            fps=args.fps,
            width=args.width,
            height=args.height,
            characters=args.characters,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summarise(generate_demo_world(config, args.out_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
