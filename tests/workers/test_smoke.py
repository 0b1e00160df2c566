import pytest

from workers.jobs.smoke import SmokeConfig, SmokeFailure, run_smoke


def test_reports_every_step_and_returns_a_result():
    seen = []
    result = run_smoke(SmokeConfig(steps=4, step_seconds=0), on_step=seen.append)
    assert seen == [1, 2, 3, 4]
    assert result.steps_done == 4


def test_fails_on_purpose_at_the_given_step():
    seen = []
    with pytest.raises(SmokeFailure, match="step 2 of 3"):
        run_smoke(SmokeConfig(steps=3, step_seconds=0, fail_at_step=2), on_step=seen.append)
    assert seen == [1]


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"step_seconds": -1}, {"steps": 2, "fail_at_step": 3}])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        SmokeConfig(**kwargs)
