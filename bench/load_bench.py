"""Pages under load (QUALITY.md 25, 26, 18): page views while uploads stream in and a GPU-queue job
runs, against the same views on the idle server (the baseline, same run); 1,000 webhooks with
duplicates through the server; a process-per-task GPU worker's memory across model jobs.

    .venv/bin/python bench/load_bench.py [--frames 5000] [--views 400] [--uploads 3]
        [--database postgres://postgres@127.0.0.1:5432/vive_load_bench]

Served as `make demo` serves it: gunicorn (2 workers × 4 threads) on 127.0.0.1, a Celery worker on
the GPU queue with --max-tasks-per-child 1 running the tiny detector (on the CPU here, so it takes
a core from the web process as a real GPU job's data loading would). The pages are every page of
tests/scale_world.py's project but the downloads, viewed by 4 browsers at once; each upload client
posts a 10 MB video to the ingest page again and again. Nothing is asserted: tests/guarantees has
the checks, this has the figures (bench/RESULTS.md).
"""

import argparse
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.databases import fresh_postgres  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="load-bench-"))
PARSER = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
PARSER.add_argument("--frames", type=int, default=5000, help="frames of the project whose pages are viewed")
PARSER.add_argument("--views", type=int, default=400, help="page views in each phase")
PARSER.add_argument("--uploads", type=int, default=3, help="upload clients while the GPU job runs")
PARSER.add_argument("--database", default=f"sqlite:///{TMP / 'bench.sqlite3'}")
ARGS = PARSER.parse_args()
ENV = {
    "DJANGO_SETTINGS_MODULE": "vivecaption_site.settings.dev",
    "DJANGO_DEBUG": "false",
    "VIVE_VAR_DIR": str(TMP / "var"),
    "MEDIA_ROOT": str(TMP / "media"),
    "MODELS_DIR": str(TMP / "models"),
    "MODEL_PROFILE": "tiny",
    "DATABASE_URL": ARGS.database,
    "CELERY_BROKER_URL": f"filesystem://{TMP / 'broker'}" if ARGS.database.startswith("sqlite") else "",
}
if ARGS.database.startswith("postgres"):
    fresh_postgres(ARGS.database)
    ENV["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/7"
os.environ.update({key: value for key, value in ENV.items() if value})

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from apps.captioning.services import detection_run_start  # noqa: E402
from apps.jobs.models import Job  # noqa: E402
from apps.labeling.models import LabelingProject  # noqa: E402
from tests.scale_world import seed_world  # noqa: E402


def _gpu_world(world):
    """The tiny detector and 40 real frames in the scale world's project, for the GPU worker."""
    from PIL import Image, ImageDraw

    from apps.media.models import AssetKind
    from apps.media.services import asset_add
    from workers.media.assets import prepare_asset
    from workers.vlm.tiny import build_tiny_qwen2_5_vl

    build_tiny_qwen2_5_vl(Path(ENV["MODELS_DIR"]) / "tiny" / "qwen2_5_vl")
    assets = []
    for index in range(40):
        image = Image.new("RGB", (320, 180), (index * 6, 120, 200))
        ImageDraw.Draw(image).ellipse((index * 5, 40, index * 5 + 80, 140), fill=(230, 80, 90))
        assets.append(asset_add(project=world.project, prepared=prepare_asset(image), kind=AssetKind.FRAME)[0])
    detector = world.project.model_versions.get(role="detector", is_default=True)
    detector.settings = {"batch_size": 1, "max_new_tokens": 48}
    detector.save()
    return detector, [asset.id for asset in assets]


def _start(name: str, command: list[str]) -> subprocess.Popen:
    log = open(TMP / f"{name}.log", "wb")  # noqa: SIM115 — closed with the process
    return subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def _signed_in(base: str, username: str) -> requests.Session:
    browser = requests.Session()
    browser.get(f"{base}/accounts/login/")
    token = browser.cookies["vivecaption_csrftoken"]
    answer = browser.post(f"{base}/accounts/login/", data={"username": username, "password": "scale-pass-1",
                                                          "csrfmiddlewaretoken": token})  # fmt: skip
    assert answer.url.endswith("/projects/"), answer.url
    return browser


def _views(base: str, sessions: list[requests.Session], pages: list[str], count: int) -> list[float]:
    rng = random.Random(count)
    plan = [rng.choice(pages) for _ in range(count)]

    def view(index: int) -> float:
        started = time.perf_counter()
        answer = sessions[index % len(sessions)].get(base + plan[index], timeout=120)
        assert answer.status_code in (200, 286), (plan[index], answer.status_code)
        return time.perf_counter() - started

    with ThreadPoolExecutor(len(sessions)) as pool:
        return list(pool.map(view, range(count)))


def _uploads(base: str, browser: requests.Session, project_id: int, video: bytes, stop: threading.Event, sent: list):
    while not stop.is_set():
        token = browser.cookies["vivecaption_csrftoken"]
        started = time.perf_counter()
        answer = browser.post(f"{base}/projects/{project_id}/ingest/", data={"csrfmiddlewaretoken": token},
                              files={"files": ("clip.mp4", video, "video/mp4")}, allow_redirects=False)  # fmt: skip
        assert answer.status_code == 302, answer.text[:300]
        sent.append((len(video), time.perf_counter() - started))


def _gpu_busy(world, detector, frames: list[int], stop: threading.Event, started: list[int]) -> None:
    """A GPU-queue job running the whole time: a detection run over the frames, again and again."""
    while not stop.is_set():
        run = detection_run_start(project=world.project, model_version=detector, asset_ids=frames,
                                  created_by=world.lead)  # fmt: skip
        started.append(run.job_id)
        while not Job.objects.get(id=run.job_id).is_finished:
            time.sleep(0.3)
    connection.close()


def _summary(name: str, seconds: list[float], wall: float) -> str:
    p95 = statistics.quantiles(seconds, n=20)[-1]
    return (f"| {name} | {len(seconds)} | {statistics.median(seconds) * 1000:.0f} | {p95 * 1000:.0f} | "
            f"{max(seconds) * 1000:.0f} | {len(seconds) / wall:.1f} |")  # fmt: skip


def _tree_rss_mb(pid: int) -> float:
    """The worker and its one pool child (waiting out the moment a used child is being replaced)."""
    import psutil

    root = psutil.Process(pid)
    for _ in range(300):
        children = root.children(recursive=True)
        if len(children) == 1:
            break
        time.sleep(0.1)
    return sum(p.memory_info().rss for p in [root, *children]) / 2**20


def _webhooks(base: str, project) -> tuple[float, int, int]:
    """1,000 posts of 300 distinct annotations, shuffled, from 4 senders; (seconds, 202s, stored)."""
    import numpy as np

    from apps.curation import services as curation
    from apps.curation.vectors import vectors_to_file
    from apps.labeling.models import PendingAnnotation

    asset_id = project.assets.order_by("id").values_list("id", flat=True)[0]
    embedding = curation.embedding_run_record(
        project=project, job=None, vectors_file=vectors_to_file([asset_id], np.ones((1, 4), np.float32)),
        model_key="b", model_name="b", count=1, dim=4,
    )  # fmt: skip
    clustering = curation.clustering_run_record(
        embedding_run=embedding, job=None, params={}, asset_ids=[asset_id], xy=[(0.0, 0.0)], labels=[0], seconds={}
    )
    gold_set = curation.gold_set_freeze(
        gold_set=curation.gold_set_create(
            project=project, clustering=clustering, picks=[(asset_id, 0, "centroid")], params={}, created_by=None
        )
    )
    target = LabelingProject.objects.create(project=project, gold_set=gold_set, webhook_secret="bench-secret",
                                            status="ready", ls_project_id=4242)  # fmt: skip
    bodies = [
        {
            "action": "ANNOTATION_CREATED",
            "project": {"id": 4242},
            "annotation": {"id": n + 1, "task": n + 1, "result": [], "completed_by": 1},
        }
        for n in range(300)
    ]
    deliveries = bodies + [random.Random(1).choice(bodies) for _ in range(700)]
    random.Random(2).shuffle(deliveries)

    def send(chunk) -> list[int]:
        sender = requests.Session()
        return [sender.post(f"{base}/labeling/webhook/{target.id}/", data=json.dumps(body),
                            headers={"Content-Type": "application/json",
                                     "X-VIVECaption-Webhook-Secret": "bench-secret"}).status_code
                for body in chunk]  # fmt: skip

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        statuses = [status for chunk in pool.map(send, [deliveries[i::4] for i in range(4)]) for status in chunk]
    seconds = time.perf_counter() - started
    if statuses.count(202) != len(statuses):
        print(f"webhook answers: {Counter(statuses)}", flush=True)
    return seconds, statuses.count(202), PendingAnnotation.objects.filter(labeling_project=target).count()


def main() -> None:
    call_command("migrate", verbosity=0)
    world = seed_world(ARGS.frames)
    detector, gpu_frames = _gpu_world(world)
    print(
        f"seeded {ARGS.frames:,} frames; {platform.machine()}, {os.cpu_count()} cores, {connection.vendor}", flush=True
    )
    call_command("collectstatic", "--noinput", verbosity=0)
    connection.close()
    from tests.labelstudio import free_port

    port = free_port()  # never a server left over from another run
    base = f"http://127.0.0.1:{port}"
    web = _start("web", [sys.executable, "-m", "gunicorn", "vivecaption_site.wsgi:application", "-b",
                         f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--timeout", "120"])  # fmt: skip
    for _ in range(120):
        assert web.poll() is None, (TMP / "web.log").read_text()[-2000:]
        try:
            if requests.get(f"{base}/healthz/", timeout=2).ok:
                break
        except requests.RequestException:  # not listening yet, or still loading the app
            time.sleep(0.5)
    pages = [url for name, url in world.pages() if not name.startswith("download")]
    sessions = [_signed_in(base, world.lead.username) for _ in range(4)]
    _views(base, sessions, pages, len(pages))  # warm: each page's first request fills its caches
    try:
        started = time.perf_counter()
        idle = _views(base, sessions, pages, ARGS.views)
        idle_wall = time.perf_counter() - started

        gpu = _start("worker-gpu", [sys.executable, "-m", "celery", "-A", "vivecaption_site", "worker", "-Q", "gpu",
                                    "-c", "1", "--prefetch-multiplier", "1", "--max-tasks-per-child", "1",
                                    "--without-gossip", "--without-mingle"])  # fmt: skip
        time.sleep(8)  # the worker is up and idle: its memory before any model job
        baseline_mb = _tree_rss_mb(gpu.pid)
        stop, sent, gpu_jobs = threading.Event(), [], []
        keeper = threading.Thread(target=_gpu_busy, args=(world, detector, gpu_frames, stop, gpu_jobs))
        keeper.start()
        while not gpu_jobs or Job.objects.get(id=gpu_jobs[0]).status != "running":
            time.sleep(0.2)
        video = os.urandom(10 * 2**20)  # staged as it arrives; what it holds is the ingest worker's business
        uploaders = [threading.Thread(target=_uploads, args=(base, _signed_in(base, world.lead.username),
                                                              world.project.id, video, stop, sent))
                     for _ in range(ARGS.uploads)]  # fmt: skip
        for uploader in uploaders:
            uploader.start()
        started = time.perf_counter()
        loaded = _views(base, sessions, pages, ARGS.views)
        loaded_wall = time.perf_counter() - started
        stop.set()
        for uploader in uploaders:
            uploader.join()
        keeper.join()

        memory = []
        for _ in range(3):  # more model jobs in a row on the same worker
            time.sleep(3)
            memory.append(_tree_rss_mb(gpu.pid))
            again = detection_run_start(project=world.project, model_version=detector, asset_ids=gpu_frames[:8],
                                        created_by=world.lead)  # fmt: skip
            while not Job.objects.get(id=again.job_id).is_finished:
                time.sleep(0.3)
        time.sleep(3)
        memory.append(_tree_rss_mb(gpu.pid))
        _stop(gpu)
        webhook_seconds, accepted, stored = _webhooks(base, world.project)
    finally:
        _stop(web)

    megabytes = sum(size for size, _ in sent) / 2**20
    print(f"\n{len(pages)} pages, 4 browsers; {ARGS.uploads} upload clients sent {len(sent)} uploads "
          f"({megabytes:.0f} MB, {megabytes / loaded_wall:.1f} MB/s, "
          f"median {statistics.median(s for _, s in sent):.2f} s "
          f"each) while {len(gpu_jobs)} detection job(s) ran one after another on the GPU queue\n")  # fmt: skip
    print("| phase | views | p50 ms | p95 ms | max ms | views/s |")
    print("|---|---|---|---|---|---|")
    print(_summary("idle server (baseline)", idle, idle_wall))
    print(_summary(f"{ARGS.uploads} uploads streaming + a GPU-queue job", loaded, loaded_wall))
    ratio = statistics.quantiles(loaded, n=20)[-1] / statistics.quantiles(idle, n=20)[-1]
    print(f"\np95 under load / idle p95: {ratio:.1f}×")
    print(
        f"1,000 webhooks (300 distinct, 700 duplicates, shuffled, 4 senders): {webhook_seconds:.1f} s, "
        f"{1000 / webhook_seconds:.0f}/s, {accepted} answered 202, {stored} annotations stored (300 expected)"
    )
    print(
        f"GPU worker memory (worker + pool child, MB): idle {baseline_mb:.0f}; after each detection job: "
        f"{', '.join(f'{m:.0f}' for m in memory)}"
    )


if __name__ == "__main__":
    main()
