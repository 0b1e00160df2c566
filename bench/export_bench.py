"""Peak memory of a dataset export as it grows: the export job users start, at 1,000 and 10,000 frames.

    .venv/bin/python bench/export_bench.py [--frames 1000 10000] [--formats hf webdataset] [--database URL]

One project per size, each frame a real JPEG in local media storage (320×180, ~6 KB) with a
caption, in a throwaway database (SQLite by default). Each export runs in a fresh process —
`export_start` then the `dataset_export` job's handler through `job_execute`, as a worker runs
it: selectors, provenance, the format writer, lint, the zip, the copy into storage — and reports
its peak resident memory (VmHWM) above what the process held before the job started.

Naive baseline, same run: the straightforward export that reads every kept caption and its image
into a list first, then hands the list to the same writer. Target (issue #15): memory flat — the
product's peak does not grow with the number of frames.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PARSER = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
PARSER.add_argument("--frames", type=int, nargs="+", default=[1000, 10_000])
PARSER.add_argument("--formats", nargs="+", default=["hf", "webdataset"])
PARSER.add_argument("--database", default=None, help="default: a throwaway SQLite file")
PARSER.add_argument("--child", nargs=3, metavar=("MODE", "PROJECT", "FORMAT"), help=argparse.SUPPRESS)
PARSER.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
ARGS = PARSER.parse_args()
TMP = Path(ARGS.tmp or tempfile.mkdtemp(prefix="export-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vivecaption_site.settings.dev")
os.environ["VIVE_VAR_DIR"] = str(TMP / "var")  # a throwaway database and media, never the demo's
os.environ["MEDIA_ROOT"] = str(TMP / "media")
os.environ["DATABASE_URL"] = ARGS.database or f"sqlite:///{TMP / 'bench.sqlite3'}"

import django  # noqa: E402

django.setup()

NAMES = ["Bruno", "Ellie", "Luna", "Mira", "Pip", "Tock"]
PLACES = ["a sunny meadow", "a dark forest", "a city street at night", "a sandy beach", "snowy mountains"]


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_mb() -> float:
    """This process's peak resident memory: VmHWM belongs to the address space, new at exec (unlike
    ru_maxrss, which a child inherits from the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_world(frames: int) -> int:
    import random

    from django.conf import settings
    from PIL import Image

    from apps.captioning.models import Caption, CaptionRun
    from apps.captioning.services import run_frames_set
    from apps.media.models import Asset
    from apps.modelhub.models import ModelVersion
    from apps.modelhub.services import model_versions_ensure
    from apps.projects.models import Character, Project
    from workers.media.assets import encode_jpeg

    project = Project.objects.create(name=f"Export bench {frames}")
    Character.objects.bulk_create([Character(project=project, name=n, description=n) for n in NAMES])
    model_versions_ensure(project=project)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    folder = Path(settings.MEDIA_ROOT) / "bench" / str(project.id)
    folder.mkdir(parents=True)
    rng = random.Random(frames)
    assets = []
    for index in range(frames):
        image = Image.new("RGB", (320, 180), (index * 7 % 256, index * 13 % 256, 120))
        image.paste((200, 40, 40), (index % 280, 40, index % 280 + 40, 120))
        name = f"bench/{project.id}/{index}.jpg"
        (Path(settings.MEDIA_ROOT) / name).write_bytes(encode_jpeg(image, 90))
        assets.append(Asset(project=project, kind="image", sha256=f"{project.id:08d}{index:056d}", width=320,
                            height=180, image=name, thumbnail=name))  # fmt: skip
    assets = Asset.objects.bulk_create(assets, batch_size=5000)
    run = CaptionRun.objects.create(project=project, model_version=captioner, pipeline="detection")
    run_frames_set(run=run, asset_ids=[a.id for a in assets])
    rows = []
    for asset in assets:
        names = sorted(rng.sample(NAMES, rng.randint(0, 3)))
        place = rng.choice(PLACES)
        fields = {
            "scene": f"{' and '.join(names) or 'Nobody'} in {place}, looking at something off screen.",
            "background": f"{place} with soft light and a few clouds",
            "characters": [{"name": n, "description": f"{n.lower()} standing"} for n in names],
            "salient_objects": rng.choice(["a red kite", "a lamp post and a bench", "a wooden boat"]),
        }
        rows.append(Caption(run=run, asset=asset, fields=fields, raw_text=json.dumps(fields), model_version_label="b"))
    Caption.objects.bulk_create(rows, batch_size=5000)
    return project.id


def child(mode: str, project_id: int, fmt: str) -> dict:
    """One export in this fresh process; its peak memory above the process's before it began."""
    from apps.exports import selectors
    from apps.exports.models import Export
    from apps.exports.services import export_start
    from apps.jobs.runner import job_execute
    from apps.projects.models import Project
    from workers.exports.config import ExportConfig
    from workers.exports.export import write_export
    from workers.exports.lint import LintConfig
    from workers.exports.records import ExportRecord

    project = Project.objects.get(id=project_id)
    before = _rss_mb()
    started = time.perf_counter()
    if mode == "product":
        export = export_start(project=project, created_by=None, format=fmt, source="best", enqueue=False)
        job_execute(export.job_id)
        export = Export.objects.select_related("job").get(id=export.id)
        assert export.job.status == "succeeded", export.job.error
        frames = export.frames
    else:  # naive: every record, image bytes included, in a list first
        records = []
        for candidate in selectors.export_candidates(project=project, source="best"):
            record = selectors.candidate_record(candidate, project)
            data = record.image().read()
            records.append(
                ExportRecord(**{**record.__dict__, "image": lambda data=data: data})  # the bytes, held
            )
        result = write_export(records, TMP / f"naive-{fmt}-{project_id}", ExportConfig(format=fmt, lint=LintConfig()))
        frames = result.frames
    return {
        "mode": mode,
        "format": fmt,
        "frames": frames,
        "seconds": round(time.perf_counter() - started, 1),
        "rss_before_mb": round(before, 1),
        "peak_mb": round(_peak_mb(), 1),
        "growth_mb": round(_peak_mb() - before, 1),
    }


def main() -> None:
    if ARGS.child:
        mode, project_id, fmt = ARGS.child
        print(json.dumps(child(mode, int(project_id), fmt)))
        return
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    projects = {}
    for frames in ARGS.frames:
        started = time.perf_counter()
        projects[frames] = build_world(frames)
        print(f"built {frames} frames in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, {connection.vendor}")
    print("| format | frames | export | peak above start (MB) | peak RSS (MB) | seconds |")
    print("|---|---|---|---|---|---|")
    results = []
    for fmt in ARGS.formats:
        for project_id in projects.values():
            for mode in ("product", "naive"):
                command = [sys.executable, __file__, "--tmp", str(TMP), "--child", mode, str(project_id), fmt]
                if ARGS.database:
                    command += ["--database", ARGS.database]
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                row = json.loads(out.strip().splitlines()[-1])
                results.append(row)
                cells = [fmt, f"{row['frames']:,}", mode, row["growth_mb"], row["peak_mb"], row["seconds"]]
                print("| " + " | ".join(str(cell) for cell in cells) + " |", flush=True)
    largest = max(ARGS.frames)
    for fmt in ARGS.formats:
        rows = {(r["mode"], r["frames"]): r for r in results if r["format"] == fmt}
        product, naive = rows[("product", largest)], rows[("naive", largest)]
        smallest = rows[("product", min(ARGS.frames))]
        print(
            f"{fmt}: at {largest:,} frames naive ÷ product peak growth = "
            f"{naive['growth_mb'] / max(product['growth_mb'], 0.1):.1f}×; product growth "
            f"{smallest['growth_mb']} MB at {min(ARGS.frames):,} frames → {product['growth_mb']} MB at {largest:,}"
        )


if __name__ == "__main__":
    main()
