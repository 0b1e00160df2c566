"""Every page and API at 100,000 frames: p95, SQL queries and bytes, one project seeded with every
kind of row (tests/scale_world.py: detection and caption runs over every frame, a gold set labelled
twice over, a fine-tuning run, an evaluation, two reviews, an export).

    .venv/bin/python bench/pages_bench.py [--frames 100000] [--requests 20]
        [--database postgres://postgres@127.0.0.1:5432/vive_pages_bench]

Timed through Django's test client, so each figure is a whole request as one web worker serves it
(routing, session, permissions, selectors, template, serializer), without the socket. The SQL
queries are counted on one more request, as they run. The database is made afresh (PostgreSQL:
dropped and created; SQLite: a temporary file). Targets (issue #16): p95 ≤ 150 ms, no response over
1 MB, the same number of queries at any size (tests/test_pages_at_scale.py checks that last one).
Baseline, same run: the cheapest page there is (`/healthz/`, no query of the project's data).
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.databases import fresh_postgres  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="pages-bench-"))
PARSER = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
PARSER.add_argument("--frames", type=int, default=100_000)
PARSER.add_argument("--requests", type=int, default=20, help="timed requests per page")
PARSER.add_argument("--database", default=f"sqlite:///{TMP / 'bench.sqlite3'}")
PARSER.add_argument("--only", default="", help="time only the pages whose name contains this")
ARGS = PARSER.parse_args()
P95_TARGET_MS, BYTES_TARGET = 150, 1_000_000
FIRST_BYTES: dict[str, list[float]] = {}  # url → seconds to the first chunk of a streamed response


if ARGS.database.startswith("postgres"):
    fresh_postgres(ARGS.database)
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "vivecaption_site.settings.dev",
        "DJANGO_DEBUG": "false",  # as served: no debug toolbar, no query log kept
        "VIVE_VAR_DIR": str(TMP / "var"),  # a throwaway database and media, never the demo's
        "MEDIA_ROOT": str(TMP / "media"),
        "DATABASE_URL": ARGS.database,
    }
)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from tests.scale_world import seed_world  # noqa: E402


def _counting(executed: list[str]):
    def wrapper(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    return wrapper


def measure(client: Client, url: str) -> tuple[list[float], int, int]:
    response = client.get(url)  # warm: the first request of a page fills caches (e.g. a summary)
    body = response.getvalue()  # a streamed download is read to its end, as a browser would
    assert response.status_code in (200, 286, 302), f"{url}: {response.status_code} {body[:300]!r}"
    executed: list[str] = []
    with connection.execute_wrapper(_counting(executed)):
        body = client.get(url).getvalue()
    seconds = []
    for _ in range(ARGS.requests):
        started = time.perf_counter()
        response = client.get(url)
        if response.streaming:  # how long until the browser has the first bytes of the file
            FIRST_BYTES.setdefault(url, []).append(time.perf_counter() - started)
        response.getvalue()
        seconds.append(time.perf_counter() - started)
    return seconds, len(executed), len(body)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def main() -> None:
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    world = seed_world(ARGS.frames)
    print(f"seeded {ARGS.frames:,} frames in {time.perf_counter() - started:.0f} s", flush=True)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(world.lead)
    baseline, _, _ = measure(client, "/healthz/")
    rows, misses = [], []
    for name, url in world.pages():
        if ARGS.only and ARGS.only not in name:
            continue
        try:
            seconds, queries, size = measure(client, url)
        except AssertionError as exc:
            print(f"  {name}: FAILED {exc}", flush=True)
            misses.append(name)
            continue
        rows.append((name, statistics.median(seconds), p95(seconds), queries, size))
        # A download (a file, streamed) may be bigger than 1 MB; its time is the whole file's.
        too_big = size > BYTES_TARGET and not name.startswith("download")
        if p95(seconds) * 1000 > P95_TARGET_MS or too_big:
            misses.append(name)
        first = f", first bytes p95 {p95(FIRST_BYTES[url]) * 1000:.0f} ms (streamed)" if url in FIRST_BYTES else ""
        print(f"  {name}: p95 {p95(seconds) * 1000:.0f} ms{first}, {queries} queries, {size:,} bytes", flush=True)
    print(f"\n{platform.machine()}, {os.cpu_count()} cores, {connection.vendor}; {ARGS.frames:,} frames; "
          f"{ARGS.requests} requests a page\n")  # fmt: skip
    print("| page or API | p50 ms | p95 ms | SQL queries | bytes |")
    print("|---|---|---|---|---|")
    for name, median, high, queries, size in rows:
        print(f"| {name} | {median * 1000:.1f} | {high * 1000:.1f} | {queries} | {size:,} |")
    print(f"| baseline: /healthz/ | {statistics.median(baseline) * 1000:.1f} | {p95(baseline) * 1000:.1f} | — | — |")
    slowest = max(rows, key=lambda row: row[2])
    print(f"\nslowest p95: {slowest[0]} {slowest[2] * 1000:.0f} ms ({slowest[2] / p95(baseline):.0f}× the baseline)")
    print(f"over the targets (p95 ≤ {P95_TARGET_MS} ms, ≤ 1 MB but downloads): {', '.join(misses) or 'none'}")


if __name__ == "__main__":
    main()
