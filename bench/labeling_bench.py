"""Label Studio round trip at scale, against a real Label Studio started for the run.

    .venv/bin/python bench/labeling_bench.py [--tasks 10000] [--naive-sample 300]

1. Push: `labeling_push` imports N tasks, each with a validated pre-annotation, in batches
   (LABELING_TASK_BATCH_SIZE). Naive baseline: one import request per task, timed on a sample
   and extrapolated to N.
2. Sync: N annotations already in Label Studio (set up untimed, through task import); the
   reconciliation pages through every task and stores N GoldLabels. Naive baseline: one
   `GET /api/annotations/<id>` per annotation (what trusting nothing but webhooks costs), timed on
   a sample and extrapolated.
Targets (issue #6): each ≤ 60 s at N = 10,000 on the developer machine.
"""

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TMP = Path(tempfile.mkdtemp(prefix="labeling-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vivecaption_site.settings.dev")
os.environ["VIVE_VAR_DIR"] = str(TMP / "var")  # a throwaway database, never the demo's
os.environ["DATABASE_URL"] = f"sqlite:///{TMP / 'bench.sqlite3'}"
os.environ["LABEL_STUDIO_ENV_FILE"] = str(TMP / "labelstudio.env")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from apps.captioning.models import Detection, DetectionRun  # noqa: E402
from apps.captioning.services import run_frames_set  # noqa: E402
from apps.curation.models import GoldItem, GoldSet  # noqa: E402
from apps.labeling import services  # noqa: E402
from apps.labeling.client import LabelStudioClient  # noqa: E402
from apps.labeling.label_config import choices_result  # noqa: E402
from apps.labeling.models import GoldLabel  # noqa: E402
from apps.media.models import Asset  # noqa: E402
from apps.modelhub.models import ModelVersion  # noqa: E402
from apps.modelhub.services import model_versions_ensure  # noqa: E402
from apps.projects.models import Character, Project  # noqa: E402
from tests.labelstudio import start_label_studio, stop_label_studio  # noqa: E402

NAMES = ["Bruno", "Ellie", "Mira", "Sprite", "Tock", "Victor"]


def _world(tasks: int, label: str) -> tuple[GoldSet, DetectionRun]:
    """Rows only: the pushed tasks carry signed links, never fetched during the benchmark."""
    project = Project.objects.create(name=f"Bench {label}")
    Character.objects.bulk_create([Character(project=project, name=name, description=name) for name in NAMES])
    assets = Asset.objects.bulk_create(
        [
            Asset(project=project, kind="image", sha256=f"{label}{i:060d}"[-64:], width=1280, height=720,
                  image=f"bench/{i}.jpg", thumbnail=f"bench/{i}.webp")
            for i in range(tasks)
        ]
    )  # fmt: skip
    gold_set = GoldSet.objects.create(project=project, version=1, status="frozen")
    GoldItem.objects.bulk_create([GoldItem(gold_set=gold_set, asset=a, source="centroid") for a in assets])
    model_versions_ensure(project=project)
    detector = ModelVersion.objects.get(project=project, role="detector", is_default=True)
    run = DetectionRun.objects.create(project=project, model_version=detector, gold_set=gold_set)
    run_frames_set(run=run, asset_ids=[a.id for a in assets])
    rng = random.Random(0)
    Detection.objects.bulk_create(
        [
            Detection(run=run, asset=a, names=sorted(rng.sample(NAMES, rng.randint(0, 3))), model_version_label="bench")
            for a in assets
        ]
    )
    return gold_set, run


def bench_push(tasks: int, naive_sample: int) -> dict:
    gold_set, run = _world(tasks, "push")
    labeling_project = services.labeling_project_start(
        gold_set=gold_set, detection_run=run, control_fraction=0.1, created_by=None, enqueue=False
    )
    started = time.perf_counter()
    outcome = services.labeling_push(labeling_project=labeling_project)
    product = time.perf_counter() - started
    assert outcome["tasks_imported"] == tasks, outcome

    client = LabelStudioClient()
    naive_project = client.project_create(title="naive import", label_config=_config(), description="")
    payload = {"model_version": "bench", "result": choices_result(["Ellie"])}
    started = time.perf_counter()
    for i in range(naive_sample):
        client.tasks_import(
            project_id=naive_project,
            tasks=[{"data": {"image": f"http://x/{i}.jpg", "asset_id": i}, "predictions": [payload]}],
        )
    naive = (time.perf_counter() - started) / naive_sample * tasks
    return {"product": product, "naive": naive}


def _config() -> str:
    from apps.labeling.label_config import label_config

    return label_config([(name, "") for name in NAMES])


def bench_sync(tasks: int, naive_sample: int) -> dict:
    gold_set, _ = _world(tasks, "sync")
    labeling_project = services.labeling_project_start(gold_set=gold_set, created_by=None, enqueue=False)
    client = LabelStudioClient()
    # Set-up (untimed): the project and its tasks with one annotation each, imported directly.
    labeling_project.ls_project_id = client.project_create(title="sync bench", label_config=_config(), description="")
    labeling_project.save()
    rng = random.Random(1)
    asset_ids = list(gold_set.items.values_list("asset_id", flat=True))
    for start in range(0, tasks, 1000):
        client.tasks_import(
            project_id=labeling_project.ls_project_id,
            tasks=[
                {
                    "data": {"image": f"http://x/{a}.jpg", "asset_id": a},
                    "annotations": [{"result": choices_result(sorted(rng.sample(NAMES, rng.randint(0, 3))))}],
                }
                for a in asset_ids[start : start + 1000]
            ],
        )
    services.labeling_push(labeling_project=labeling_project)  # adopts the tasks, imports nothing
    started = time.perf_counter()
    outcome = services.labels_reconcile(labeling_project=labeling_project)
    product = time.perf_counter() - started
    assert outcome["stored"] == tasks == GoldLabel.objects.filter(labeling_project=labeling_project).count(), outcome

    ids = list(GoldLabel.objects.filter(labeling_project=labeling_project).values_list("ls_annotation_id", flat=True))
    started = time.perf_counter()
    for annotation_id in ids[:naive_sample]:
        client.annotation(annotation_id)
    naive = (time.perf_counter() - started) / naive_sample * tasks
    return {"product": product, "naive": naive}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--naive-sample", type=int, default=300)
    args = parser.parse_args()
    server = start_label_studio(TMP / "labelstudio" / "data")
    settings.LABEL_STUDIO_URL = settings.LABEL_STUDIO_PUBLIC_URL = server.url
    settings.LABEL_STUDIO_TOKEN = server.token
    try:
        call_command("migrate", verbosity=0)
        push = bench_push(args.tasks, args.naive_sample)
        sync = bench_sync(args.tasks, args.naive_sample)
    finally:
        stop_label_studio(server)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores; {args.tasks} tasks")
    for name, row in (("push (import with predictions)", push), ("sync (reconcile annotations)", sync)):
        print(
            f"{name:<34} product {row['product']:6.1f} s   naive ≈{row['naive']:7.1f} s "
            f"(extrapolated from {args.naive_sample})   ratio {row['naive'] / row['product']:5.1f}×   "
            f"target ≤ 60 s: {'met' if row['product'] <= 60 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
