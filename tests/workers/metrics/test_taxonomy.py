"""Every number the package produces is in the catalogue with its taxonomy class, and the light
modules stay importable by the web process without the ML stack."""

import subprocess
import sys

from workers.metrics.judge import JUDGE_FIELDS
from workers.metrics.taxonomy import METRICS, MetricClass


def test_every_produced_score_has_its_class():
    """The names come from what the producers emit, not from a copy of the catalogue."""
    from workers.metrics.detection import detection_scores, detection_table
    from workers.metrics.judge import JUDGE_RUBRIC_VERSION, JudgeReport

    table_one = detection_table({"detector": detection_scores({1: ["Ellie"]}, {1: ["Ellie"], 2: []})})[0]
    detection = set(table_one) - {"detector", "n"}  # the paper's Table 1 score columns
    judge = set(JudgeReport("judge", JUDGE_RUBRIC_VERSION).scores())  # what workers.metrics.stats compares
    clip = {"clip_score"} & _row_fields("workers.metrics.clipscore", "ClipScoreRow")
    assert len(detection) == 4 and judge == {"overall", *JUDGE_FIELDS} and clip == {"clip_score"}
    for names, metric_class in [
        (detection, MetricClass.INSTANCE_GROUNDED),
        (judge | clip, MetricClass.MODEL_BASED_UNIVERSAL),
    ]:
        assert {name: METRICS[name].metric_class for name in names} == dict.fromkeys(names, metric_class)
    # The health check's two numbers are the model-free ones; nothing else is catalogued.
    model_free = {name for name, info in METRICS.items() if info.metric_class is MetricClass.MODEL_FREE_UNIVERSAL}
    assert set(METRICS) == detection | judge | clip | model_free and len(model_free) == 2
    assert all(info.name == name and info.label and info.description and info.scale for name, info in METRICS.items())


def _row_fields(module: str, row: str) -> set[str]:
    import dataclasses
    import importlib

    return {field.name for field in dataclasses.fields(getattr(importlib.import_module(module), row))}


def test_the_light_modules_do_not_load_torch_or_django():
    modules = ["taxonomy", "detection", "health", "stats", "sampling", "judge"]
    code = (
        "import sys\n"
        + "".join(f"import workers.metrics.{module}\n" for module in modules)
        + "print(sorted(m for m in ('torch', 'open_clip', 'transformers', 'django') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
