"""Every number the package produces is in the catalogue with its taxonomy class, and the light
modules stay importable by the web process without the ML stack."""

import subprocess
import sys

from workers.metrics.judge import JUDGE_FIELDS
from workers.metrics.taxonomy import METRICS, MetricClass


def test_every_produced_score_has_its_class():
    expected = {
        **dict.fromkeys(["precision", "recall", "f1", "mistakes"], MetricClass.INSTANCE_GROUNDED),
        **dict.fromkeys(["caption_tokens", "structure_adherence"], MetricClass.MODEL_FREE_UNIVERSAL),
        **dict.fromkeys(["clip_score", "overall", *JUDGE_FIELDS], MetricClass.MODEL_BASED_UNIVERSAL),
    }
    assert {name: info.metric_class for name, info in METRICS.items()} == expected
    assert all(info.label and info.description and info.scale for info in METRICS.values())


def test_the_light_modules_do_not_load_torch_or_django():
    modules = ["taxonomy", "detection", "health", "stats", "sampling", "judge"]
    code = (
        "import sys\n"
        + "".join(f"import workers.metrics.{module}\n" for module in modules)
        + "print(sorted(m for m in ('torch', 'open_clip', 'transformers', 'django') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
