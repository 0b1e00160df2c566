"""The orchestration ceiling: a detection run over N frames, split into shards, pushed through
real Celery workers against an OpenAI-compatible server that answers at once.

    .venv/bin/python bench/orchestration_bench.py [--frames 1000000] [--workers 2] [--concurrency 32]
        [--database postgres://postgres@127.0.0.1:5432/vive_orchestration_bench] [--broker redis://127.0.0.1:6379/5]

The server costs nothing to think, so what is measured is the product's own overhead per frame:
the run's start (frame checks, membership rows), shard jobs queued and claimed, each frame's image
read and encoded, its request and answer, the answers written a chunk at a time, progress and
heartbeats — the ceiling in frames/s below which it never holds back a GPU fleet. The database is
created afresh (PostgreSQL: dropped and created; SQLite: a temporary file).

Baseline, same run: the same requests from the same number of processes with no product around
them (no database, no jobs): the client's and the server's own ceiling on this machine. Where the
time goes: one shard run in this process, its wall time split by phase (requests in flight,
prompt building, parsing, answer writes, progress, the rest), and one request's cost split into
encoding and the round trip.
"""

import argparse
import io
import json
import multiprocessing
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.databases import fresh_postgres  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="orchestration-bench-"))
PARSER = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
PARSER.add_argument("--frames", type=int, default=1_000_000)
PARSER.add_argument("--shard", type=int, default=1000, help="RUN_SHARD_FRAMES (the product's default: 1000)")
PARSER.add_argument("--workers", type=int, default=2, help="Celery worker processes on the gpu queue")
PARSER.add_argument("--concurrency", type=int, default=32, help="requests in flight per worker")
PARSER.add_argument("--baseline-frames", type=int, default=20_000)
PARSER.add_argument("--database", default=f"sqlite:///{TMP / 'bench.sqlite3'}")
PARSER.add_argument("--broker", default="", help="default: the filesystem broker in a temporary folder")
PARSER.add_argument("--start-only", action="store_true", help="time the run's start alone (profiled), no workers")
ARGS = PARSER.parse_args()
ANSWER = json.dumps({"choices": [{"message": {"role": "assistant", "content": '["Ellie"]'}}]}).encode()


def serve(port_out, counter) -> None:
    """An OpenAI-compatible chat-completions server that answers every request at once."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the backend's client reuses its connections

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as vLLM's uvicorn does

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            with counter.get_lock():
                counter.value += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(ANSWER)))
            self.end_headers()
            self.wfile.write(ANSWER)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_out.put(server.server_port)
    server.serve_forever()


SERVER_REQUESTS = multiprocessing.Value("q", 0)
_ports: multiprocessing.Queue = multiprocessing.Queue()
SERVER = multiprocessing.Process(target=serve, args=(_ports, SERVER_REQUESTS), daemon=True)
SERVER.start()
PORT = _ports.get(timeout=30)
BASE_URL = f"http://127.0.0.1:{PORT}/v1"

if ARGS.database.startswith("postgres"):
    fresh_postgres(ARGS.database)
ENV = {
    "DJANGO_SETTINGS_MODULE": "vivecaption_site.settings.dev",
    "VIVE_VAR_DIR": str(TMP / "var"),  # a throwaway database and media, never the demo's
    "MEDIA_ROOT": str(TMP / "media"),
    "DATABASE_URL": ARGS.database,
    **({"CELERY_BROKER_URL": ARGS.broker} if ARGS.broker else {}),  # else the embedded filesystem broker
    "VLM_ALLOWED_BASE_URLS": "http://127.0.0.1:*",
    "VLM_QUEUE": "gpu",
    "RUN_SHARD_FRAMES": str(ARGS.shard),
    "JOB_HEARTBEAT_SECONDS": "10",
}
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from PIL import Image  # noqa: E402

from apps.accounts.services import user_create  # noqa: E402
from apps.captioning.models import Detection  # noqa: E402
from apps.captioning.services import detection_run_start  # noqa: E402
from apps.core.permissions import Role  # noqa: E402
from apps.jobs.models import Job  # noqa: E402
from apps.jobs.runner import job_execute  # noqa: E402
from apps.media.models import Asset  # noqa: E402
from apps.modelhub.services import model_version_create  # noqa: E402
from apps.modelhub.specs import model_spec_for  # noqa: E402
from apps.projects.models import ReferenceImage  # noqa: E402
from apps.projects.services import character_create, project_create, reference_image_add  # noqa: E402

NAMES = ["Ellie", "Victor", "Luna", "Pip"]


def png(color, size=(96, 96)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def seed(frames: int):
    lead = user_create(username="lead", password="bench-pass-1", role=Role.LEAD)
    project = project_create(name="Orchestration bench", created_by=lead)
    for index, name in enumerate(NAMES):
        character = character_create(project=project, name=name, description=f"{name}, a blob of colour {index}.")
        reference_image_add(character=character, upload=SimpleUploadedFile(f"{name}.png", png((60 * index, 90, 200))))
    frame = Path(settings.MEDIA_ROOT) / "bench" / "frame.jpg"
    frame.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (320, 180), (40, 120, 200)).save(frame, quality=85)
    batch = 20_000
    for start in range(0, frames, batch):
        Asset.objects.bulk_create(
            [
                Asset(project=project, kind="frame", sha256=f"{index:064d}", width=320, height=180,
                      image="bench/frame.jpg", thumbnail="bench/frame.jpg")
                for index in range(start, min(start + batch, frames))
            ],
            batch_size=5000,
        )  # fmt: skip
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the statistics autovacuum would gather on a live database
            cursor.execute("ANALYZE")
    detector = model_version_create(
        project=project, role="detector", name="fleet", model="served", backend="openai", base_url=BASE_URL,
        settings_={"concurrency": ARGS.concurrency, "batch_size": 8, "max_retries": 0},
    )  # fmt: skip
    return lead, project, detector


def _baseline_share(spec, references: list[str], prompts_count: int, out) -> None:
    """One process sending `prompts_count` frames' prompts straight to the server."""
    from workers.vlm.backends import load_backend
    from workers.vlm.prompts import CharacterCard, detection_prompt

    backend = load_backend(spec)
    cards = [
        CharacterCard(name=name, description=f"{name}, a blob.", reference_paths=(path,))
        for name, path in zip(NAMES, references, strict=True)
    ]
    frame = Path(settings.MEDIA_ROOT) / "bench" / "frame.jpg"
    chunk = max(spec.batch_size * 8, spec.concurrency * 2)
    started = time.perf_counter()
    done = 0
    while done < prompts_count:
        size = min(chunk, prompts_count - done)
        outputs = backend.generate([detection_prompt(cards, frame) for _ in range(size)])
        wrong = [output for output in outputs if output.text != '["Ellie"]']
        assert not wrong, wrong[0]
        done += size
    out.put(time.perf_counter() - started)


def baseline(spec, project, frames: int, processes: int) -> float:
    """frames/s of `processes` processes sending the requests with nothing around them."""
    references = [ref.image.path for ref in ReferenceImage.objects.filter(character__project=project).order_by("id")]
    connection.close()  # no database connection is inherited by the forked processes
    results: multiprocessing.Queue = multiprocessing.Queue()
    share = frames // processes
    workers = [
        multiprocessing.Process(target=_baseline_share, args=(spec, references, share, results))
        for _ in range(processes)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return share * processes / (time.perf_counter() - started)


def start_workers(count: int, logs: Path) -> list[subprocess.Popen]:
    env = {**os.environ, **ENV}
    command = [
        sys.executable, "-m", "celery", "-A", "vivecaption_site", "worker", "-Q", "gpu", "-c", "1",
        "--prefetch-multiplier", "1", "--max-tasks-per-child", "1",  # as docker-compose runs GPU workers
        "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
    ]  # fmt: skip
    return [
        subprocess.Popen(
            [*command, "-n", f"bench-{index}@%h"],
            cwd=ROOT,
            env=env,
            stdout=(logs / f"worker-{index}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        for index in range(count)
    ]


def where_the_time_goes(lead, project, detector, asset_ids: list[int]) -> dict[str, float]:
    """One shard's worth of frames run here; its wall time split by phase (each phase's function
    wrapped in a timer), then one request's cost split into encoding and the round trip."""
    import apps.captioning.services as run_services
    import apps.jobs.runner as runner
    import workers.vlm.backends as backends
    import workers.vlm.parsing as parsing
    import workers.vlm.prompts as prompts

    seconds: dict[str, float] = defaultdict(float)

    def timed(owner, name: str, label: str):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - started

        setattr(owner, name, wrapper)
        return owner, name, original

    patches = [
        timed(backends.OpenAIBackend, "generate", "requests in flight (encode + send + answer)"),
        timed(prompts, "detection_prompt", "prompt building"),
        timed(parsing, "parse_detection", "answer parsing"),
        timed(run_services, "answers_store", "answer writes (one INSERT a chunk)"),
        timed(runner.JobContext, "progress", "progress and cancel checks"),
    ]
    run = detection_run_start(
        project=project, model_version=detector, asset_ids=asset_ids, created_by=lead, enqueue=False
    )
    started = time.perf_counter()
    job_execute(run.job_id)
    wall = time.perf_counter() - started
    for owner, name, original in patches:
        setattr(owner, name, original)
    assert Detection.objects.filter(run=run).count() == len(asset_ids)
    parts = {"shard_wall_seconds": wall, **seconds}
    parts["the rest (claim, model spec, frame reads, finish)"] = wall - sum(seconds.values())

    backend = backends.load_backend(model_spec_for(detector))  # one request at a time, split
    cards = [
        prompts.CharacterCard(name=ref.character.name, description="", reference_paths=(ref.image.path,))
        for ref in ReferenceImage.objects.filter(character__project=project).select_related("character")
    ]
    frame = Path(settings.MEDIA_ROOT) / "bench" / "frame.jpg"
    encode = send = 0.0
    for _ in range(300):
        started = time.perf_counter()
        payload = backend._payload(prompts.detection_prompt(cards, frame))
        encode += time.perf_counter() - started
        started = time.perf_counter()
        assert backend._one(payload).text == '["Ellie"]'
        send += time.perf_counter() - started
    parts["one request: prompt + encode ms"] = encode / 300 * 1000
    parts["one request: round trip ms (client + server)"] = send / 300 * 1000
    return parts


def start_profiled(lead, project, detector, ids: list[int]) -> None:
    """The run's start over every frame, with where its time goes (cProfile, by cumulative time)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    detection_run_start(project=project, model_version=detector, asset_ids=ids, created_by=lead, enqueue=False)
    profiler.disable()
    print(f"run started in {time.perf_counter() - started:.1f} s ({len(ids)} frames)", flush=True)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)


def main() -> None:
    call_command("migrate", verbosity=0)
    began = time.perf_counter()
    lead, project, detector = seed(ARGS.frames)
    seeded = time.perf_counter() - began
    ids = list(Asset.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    spec = model_spec_for(detector)
    if ARGS.start_only:
        start_profiled(lead, project, detector, ids)
        return

    raw = baseline(spec, project, ARGS.baseline_frames, ARGS.workers)
    print(f"baseline: {raw:.0f} frames/s ({ARGS.workers} processes, no product around the requests)", flush=True)

    profile_ids = ids[: ARGS.shard]
    parts = where_the_time_goes(lead, project, detector, profile_ids)
    print("one shard in this process:", json.dumps(parts, indent=1), flush=True)

    logs = TMP / "logs"
    logs.mkdir()
    workers = start_workers(ARGS.workers, logs)
    try:
        time.sleep(8)  # the workers start (their Django and Celery) before the clock runs
        requests_before = SERVER_REQUESTS.value
        started = time.perf_counter()
        run = detection_run_start(project=project, model_version=detector, asset_ids=ids, created_by=lead)
        start_seconds = time.perf_counter() - started
        print(f"run started in {start_seconds:.1f} s ({len(ids)} frames)", flush=True)
        last = 0.0
        while True:
            job = Job.objects.get(id=run.job_id)
            if job.is_finished:
                break
            if time.perf_counter() - last > 30:
                last = time.perf_counter()
                done = Detection.objects.filter(run=run).count()
                print(f"  {time.perf_counter() - started:7.0f} s  {done} frames  {job.progress:.1%}", flush=True)
            time.sleep(1)
        wall = time.perf_counter() - started
    finally:
        for worker in workers:
            try:
                os.killpg(worker.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    assert job.status == "succeeded", (job.status, job.error)
    stored = Detection.objects.filter(run=run).count()
    assert stored == len(ids) == job.result["frames"], (stored, job.result)
    shards = Job.objects.filter(parent_id=job.id)
    shard_seconds = [(s.finished_at - s.started_at).total_seconds() for s in shards]
    fps = len(ids) / wall
    report = {
        "machine": f"{platform.node()} · {os.cpu_count()} cores · {platform.python_version()}",
        "database": connection.vendor,
        "broker": settings.CELERY_BROKER_URL.split(":")[0],
        "frames": len(ids),
        "shards": shards.count(),
        "workers": ARGS.workers,
        "concurrency_per_worker": ARGS.concurrency,
        "seed_seconds": round(seeded, 1),
        "run_start_seconds": round(start_seconds, 1),
        "wall_seconds": round(wall, 1),
        "frames_per_second": round(fps),
        "baseline_frames_per_second": round(raw),
        "ratio_to_baseline": round(fps / raw, 3),
        "mean_shard_seconds": round(sum(shard_seconds) / len(shard_seconds), 2),
        "server_requests": SERVER_REQUESTS.value - requests_before,
        "one_shard_here": {key: round(value, 3) for key, value in parts.items()},
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    try:
        main()
    finally:
        SERVER.terminate()
        threading.Thread(target=SERVER.join, daemon=True).start()
