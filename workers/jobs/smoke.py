"""The smoke job: sleeps in steps and reports progress, to exercise the whole job path."""

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SmokeConfig:
    steps: int = 10
    step_seconds: float = 0.5
    fail_at_step: int | None = None  # to show what a failing job looks like

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 10_000:
            raise ValueError("steps must be between 1 and 10000")
        if not 0 <= self.step_seconds <= 3600:
            raise ValueError("step_seconds must be between 0 and 3600")
        if self.fail_at_step is not None and not 1 <= self.fail_at_step <= self.steps:
            raise ValueError("fail_at_step must be between 1 and steps")


@dataclass(frozen=True)
class SmokeResult:
    steps_done: int
    elapsed_seconds: float


class SmokeFailure(RuntimeError):
    pass


def run_smoke(config: SmokeConfig, on_step: Callable[[int], None] | None = None) -> SmokeResult:
    started = time.monotonic()
    for step in range(1, config.steps + 1):
        time.sleep(config.step_seconds)
        if config.fail_at_step == step:
            raise SmokeFailure(f"Failed on purpose at step {step} of {config.steps}.")
        if on_step is not None:
            on_step(step)
    return SmokeResult(steps_done=config.steps, elapsed_seconds=round(time.monotonic() - started, 3))
