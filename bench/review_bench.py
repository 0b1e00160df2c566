"""The reviewers' comparison page and its API at scale: 100,000 captions in the database.

    .venv/bin/python bench/review_bench.py [--frames 50000] [--requests 200] [--database URL]

Two caption runs over N frames (2N captions) and a review of them, in a throwaway database
(SQLite by default; `--database postgres://…` for PostgreSQL). Timed through Django's test client,
so each figure is a whole request — URL routing, session, permissions, selectors, template — as
a reviewer's browser gets it from one web worker:
- the blind comparison page (`/projects/<p>/reviews/<r>/?at=K`), at random positions, unfiltered
  and filtered by a character;
- the API's frame (`/api/projects/<p>/reviews/<r>/frame/?at=K`).
Naive baseline, same run: a comparison page that works out its queue per request — every caption
of both runs loaded, the frames both captioned found and filtered in Python, then the frame's
neighbours and index — the straightforward way to write it. Target (issue #14): p95 ≤ 150 ms and
a constant number of SQL queries per page.
"""

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TMP = Path(tempfile.mkdtemp(prefix="review-bench-"))
PARSER = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
PARSER.add_argument("--frames", type=int, default=50_000, help="frames; the database holds twice as many captions")
PARSER.add_argument("--requests", type=int, default=200)
PARSER.add_argument("--database", default=f"sqlite:///{TMP / 'bench.sqlite3'}")
ARGS = PARSER.parse_args()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vivecaption_site.settings.dev")
os.environ["VIVE_VAR_DIR"] = str(TMP / "var")  # a throwaway database, never the demo's
os.environ["DATABASE_URL"] = ARGS.database

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from apps.accounts.services import user_create  # noqa: E402
from apps.captioning.models import Caption, CaptionRun  # noqa: E402
from apps.captioning.services import run_frames_set  # noqa: E402
from apps.core.permissions import Role  # noqa: E402
from apps.media.models import Asset  # noqa: E402
from apps.modelhub.models import ModelVersion  # noqa: E402
from apps.modelhub.services import model_versions_ensure  # noqa: E402
from apps.projects.models import Character, Project  # noqa: E402
from apps.review.selectors import caption_names  # noqa: E402
from apps.review.services import review_create  # noqa: E402

NAMES = ["Bruno", "Ellie", "Luna", "Mira", "Pip", "Sprite", "Tock", "Victor"]
PLACES = ["a sunny meadow", "a dark forest", "a city street at night", "a sandy beach", "snowy mountains"]


def _fields(rng: random.Random, names: list[str]) -> dict:
    place = rng.choice(PLACES)
    return {
        "scene": f"{' and '.join(names) or 'Nobody'} in {place}, looking at something off screen.",
        "background": f"{place} with soft light and a few clouds",
        "characters": [{"name": n, "description": f"{n.lower()} standing, seen from the side"} for n in names],
        "salient_objects": rng.choice(["a red kite", "a lamp post and a bench", "a wooden boat", "nothing else"]),
    }


def build_world(frames: int):
    project = Project.objects.create(name="Review bench")
    Character.objects.bulk_create([Character(project=project, name=n, description=n) for n in NAMES])
    reviewer = user_create(username="bench-reviewer", password="bench-pass-123", role=Role.REVIEWER)
    project.memberships.create(user=reviewer)
    model_versions_ensure(project=project)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    assets = Asset.objects.bulk_create(
        [
            Asset(project=project, kind="image", sha256=f"{i:064d}", width=640, height=360,
                  image=f"bench/{i}.jpg", thumbnail=f"bench/{i}.webp")
            for i in range(frames)
        ],
        batch_size=5000,
    )  # fmt: skip
    ids = [asset.id for asset in assets]
    runs = [CaptionRun.objects.create(project=project, model_version=captioner, pipeline="detection") for _ in range(2)]
    rng = random.Random(0)
    for run in runs:
        run_frames_set(run=run, asset_ids=ids)
        rows = []
        for asset in assets:
            names = sorted(rng.sample(NAMES, rng.randint(0, 3)))
            rows.append(
                Caption(
                    run=run, asset=asset, fields=_fields(rng, names), characters_given=names, model_version_label="b"
                )
            )
        Caption.objects.bulk_create(rows, batch_size=5000)
    started = time.perf_counter()
    review = review_create(baseline=runs[0], candidate=runs[1], created_by=None)
    seconds = time.perf_counter() - started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum does within a minute of a bulk insert
            cursor.execute("ANALYZE")
    return project, reviewer, review, runs, seconds


def naive_frame(runs, position: int, character: str) -> dict:
    """The queue worked out per request, in Python."""
    by_run = [
        {
            row["asset_id"]: row
            for row in Caption.objects.filter(run=run).values("id", "asset_id", "fields", "characters_given")
        }
        for run in runs
    ]
    queue = []
    for asset_id in runs[0].frame_ids():
        if asset_id in by_run[0] and asset_id in by_run[1]:
            named = set(caption_names(by_run[0][asset_id]["fields"])) | set(
                caption_names(by_run[1][asset_id]["fields"])
            )
            if not character or character in named:
                queue.append(asset_id)
    index = min(position, len(queue) - 1)
    asset_id = queue[index]
    return {
        "captions": (by_run[0][asset_id], by_run[1][asset_id]),
        "previous": queue[index - 1] if index else None,
        "next": queue[index + 1] if index + 1 < len(queue) else None,
        "index": index + 1,
        "total": len(queue),
    }


def _counting(executed: list[str]):
    def wrapper(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    return wrapper


def timed(call, count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    project, reviewer, review, runs, review_seconds = build_world(ARGS.frames)
    print(f"{Caption.objects.count():,} captions, a review of {review.frame_count:,} frames "
          f"(seeded in {time.perf_counter() - started:.0f} s; the review itself {review_seconds:.1f} s)")  # fmt: skip
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(reviewer)
    rng = random.Random(1)
    base = f"/projects/{project.id}/reviews/{review.id}/"
    api = f"/api/projects/{project.id}/reviews/{review.id}/frame/"
    cases = {
        "comparison page": lambda: client.get(f"{base}?at={rng.randrange(review.frame_count)}"),
        "comparison page, filtered by a character": lambda: client.get(
            f"{base}?character=Mira&at={rng.randrange(review.frame_count)}"
        ),
        "API frame": lambda: client.get(f"{api}?at={rng.randrange(review.frame_count)}"),
    }
    rows = []
    for name, call in cases.items():
        response = call()
        assert response.status_code == 200, response.content[:300]
        executed: list[str] = []  # counted as they run: the query log is reset when a request starts
        with connection.execute_wrapper(_counting(executed)):
            response = call()
        seconds = timed(call, ARGS.requests)
        rows.append((name, statistics.median(seconds), p95(seconds), len(executed), len(response.content)))
    naive = timed(lambda: naive_frame(runs, rng.randrange(review.frame_count), "Mira"), max(5, ARGS.requests // 20))
    print(f"\n{platform.machine()}, {os.cpu_count()} cores, {connection.vendor}; {ARGS.requests} requests each\n")
    print("| request | p50 ms | p95 ms | SQL queries | bytes |")
    print("|---|---|---|---|---|")
    for name, median, high, queries, size in rows:
        print(f"| {name} | {median * 1000:.1f} | {high * 1000:.1f} | {queries} | {size:,} |")
    naive_label = "naive: the queue worked out per request (the selector alone, no template)"
    print(f"| {naive_label} | {statistics.median(naive) * 1000:.0f} | {p95(naive) * 1000:.0f} | 2 | — |")
    filtered = next(row for row in rows if "filtered" in row[0])
    print(f"\nnaive p95 ÷ product p95 (filtered page): {p95(naive) / filtered[2]:.0f}×")


if __name__ == "__main__":
    main()
