"""Job kinds owned by the jobs app."""

from dataclasses import asdict
from typing import Any

from apps.jobs.kinds import job_kind
from apps.jobs.models import Job
from apps.jobs.runner import JobContext
from workers.jobs.smoke import SmokeConfig, run_smoke


def _smoke_params(params: dict[str, Any]) -> dict[str, Any]:
    allowed = {"steps", "step_seconds", "fail_at_step"}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    config = SmokeConfig(
        steps=int(params.get("steps", 10)),
        step_seconds=float(params.get("step_seconds", 0.5)),
        fail_at_step=None if params.get("fail_at_step") in (None, "") else int(params["fail_at_step"]),
    )
    return asdict(config)


@job_kind(name="smoke", label="Smoke test", queue="cpu", clean_params=_smoke_params, launchable=True)
def smoke(job: Job, ctx: JobContext) -> dict[str, Any]:
    config = SmokeConfig(**job.params)
    result = run_smoke(config, on_step=ctx.step_reporter(config.steps, "Step {done} of {total}"))
    return asdict(result)


@job_kind(name="smoke_gpu", label="Smoke test (GPU queue)", queue="gpu", clean_params=_smoke_params, launchable=True)
def smoke_gpu(job: Job, ctx: JobContext) -> dict[str, Any]:
    return smoke(job, ctx)
