"""Every page and API makes the same number of SQL queries for a project of 1,000 frames as for one
of 10,000 (tests/scale_world.py seeds both with every kind of row), and none answers more than 1 MB
but the downloads. bench/pages_bench.py times the same pages at 100,000 frames."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from tests.scale_world import seed_world

pytestmark = pytest.mark.django_db

# The routes a user reads that the scale test leaves out, and why; everything else must be in
# World.pages() (the next test fails when a new page is in neither).
NOT_PAGES = {
    "api:api-docs": "the API's docs (no project data)",
    "api:schema": "the API's schema (no project data)",
    "evaluation:frames": "the frames behind one number of the gold test split (a fifth of the gold frames)",
    "exports:download": "the export's archive, streamed from storage",
    "labeling:file": "one frame's image for Label Studio, streamed from storage",
    "media:image": "one frame's image, streamed from storage",
    "media:thumb": "one frame's thumbnail, streamed from storage",
    "projects:reference_file": "one reference image, streamed from storage",
    "login": "the sign-in form (no project data)",
    "healthz": "the benchmark's baseline",
}
POST_ONLY = {
    "api:character-references", "api:export-preview", "api:job-cancel", "api:review-corrections", "api:review-votes",
    "api:token-obtain", "api:uploads", "captioning:caption", "captioning:detect", "curation:cluster", "curation:embed",
    "curation:gold_set_edit", "curation:sample", "evaluation:eval_set_create", "evaluation:start", "exports:create",
    "jobs:cancel", "jobs:launch", "labeling:accounts", "labeling:resolve", "labeling:start", "labeling:sync",
    "labeling:webhook", "logout", "modelhub:add", "modelhub:default", "projects:character_delete",
    "projects:member_add", "projects:reference_delete", "projects:reference_upload", "review:correct",
    "review:create", "review:pairwise", "review:resolve", "review:vote", "training:launch",
}  # fmt: skip


def _route_names(patterns, namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver) and pattern.namespace != "admin":
            yield from _route_names(
                pattern.url_patterns, f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            )
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield namespace + pattern.name


def _route_of(url: str) -> str:
    return resolve(url.split("?")[0]).view_name


def test_every_page_a_user_reads_is_in_the_scale_world():
    world_pages = seed_world(30, tag="routes").pages()
    routes = set(_route_names(get_resolver().url_patterns))
    covered = {_route_of(url) for _, url in world_pages}
    assert not covered & (set(NOT_PAGES) | POST_ONLY)
    assert routes - covered - set(NOT_PAGES) - POST_ONLY == set()
    assert len(world_pages) >= 50


def _measured(client, pages) -> dict[str, tuple[int, int]]:
    measured = {}
    for name, url in pages:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
            body = response.getvalue()  # a streamed download makes its queries as it is read
        assert response.status_code in (200, 286, 302), (name, response.status_code)
        measured[name] = (len(queries), len(body))
    return measured


def test_no_page_makes_more_queries_for_a_bigger_project(client):
    small, big = seed_world(1_000), seed_world(10_000)
    assert big.project.assets.count() == 10_000 and big.project.gold_sets.get().items.count() == 200
    client.force_login(small.lead)
    at_1k = _measured(client, small.pages())
    client.force_login(big.lead)
    at_10k = _measured(client, big.pages())
    assert at_1k.keys() == at_10k.keys() and len(at_1k) >= 50
    # the pages show the data (not an empty shell): the big project's runs page counts its frames
    assert "10000 / 10000" in client.get(dict(big.pages())["runs"]).content.decode()
    grown = {name: (at_1k[name][0], at_10k[name][0]) for name in at_1k if at_1k[name][0] != at_10k[name][0]}
    assert grown == {}, f"queries at 1,000 vs 10,000 frames: {grown}"
    too_big = {name: size for name, (_, size) in at_10k.items() if size > 1_000_000 and not name.startswith("download")}
    assert too_big == {}
