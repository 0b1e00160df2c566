"""A run's page at any size: its answers a keyset page at a time, the same number of SQL
queries for a run of 1,000 frames as for one of 10,000, and the next page loaded on scroll."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.captioning.models import Caption, CaptionRun, Detection, DetectionRun
from apps.captioning.services import run_answers_recount, run_frames_set
from apps.captioning.views import RUN_PAGE_ROWS
from apps.core.shown import without_server_path
from apps.jobs.models import Job
from apps.media.models import Asset
from apps.modelhub.models import ModelVersion
from apps.modelhub.services import model_versions_ensure
from apps.projects.services import project_create
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def _world(lead, frames: int):
    project = project_create(name=f"{frames} frames", created_by=lead)
    model_versions_ensure(project=project)
    assets = Asset.objects.bulk_create(
        [
            Asset(project=project, kind="frame", sha256=f"{project.id:08d}{i:056d}", width=4, height=4,
                  image=f"x/{i}.jpg", thumbnail=f"x/{i}.webp")
            for i in range(frames)
        ],
        batch_size=5000,
    )  # fmt: skip
    ids = [asset.id for asset in assets]
    detector, captioner = (project.model_versions.get(role=role, is_default=True) for role in ("detector", "captioner"))
    detections = DetectionRun.objects.create(project=project, model_version=detector)
    captions = CaptionRun.objects.create(project=project, model_version=captioner, pipeline="detection")
    for run in (detections, captions):
        run_frames_set(run=run, asset_ids=ids)
    Detection.objects.bulk_create(
        [Detection(run=detections, asset_id=i, names=["Ellie"], model_version_label="d") for i in ids], batch_size=5000
    )
    fields = {"scene": "s", "background": "b", "characters": [{"name": "Ellie", "description": "d"}]}
    Caption.objects.bulk_create(
        [Caption(run=captions, asset_id=i, fields=fields, model_version_label="c") for i in ids], batch_size=5000
    )
    for run in (detections, captions):  # as the run's job leaves it: its answers counted
        run_answers_recount(run=run)
    return project, detections, captions


def _get(client, url: str, **headers) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **headers)
    assert response.status_code == 200
    return response.content.decode(), len(queries)


ROW_MARKERS = [("detections", '<img class="pick"'), ("captions", 'class="card caption-row"')]


@pytest.mark.parametrize(("kind", "row_marker"), ROW_MARKERS)
def test_a_run_page_shows_one_page_of_answers_and_its_queries_do_not_grow_with_the_run(lead, client, kind, row_marker):
    client.force_login(lead)
    per_page = RUN_PAGE_ROWS[kind]
    counts, sizes = [], []
    for frames in (1_000, 10_000):
        project, detections, captions = _world(lead, frames)
        run = detections if kind == "detections" else captions
        url = f"/projects/{project.id}/runs/{kind}/{run.id}/"
        page, queries = _get(client, url)
        assert page.count(row_marker) == per_page and f"{frames} / {frames}" in page
        counts.append(queries)
        sizes.append(len(page))
    assert counts[0] == counts[1], counts  # the same queries whatever the run's size
    assert max(sizes) < 100_000 and abs(sizes[0] - sizes[1]) < 0.05 * sizes[0]  # a page, not the run

    # the next page, as htmx asks for it on scroll: the rows only, starting after the last one
    first = list(run.frames.order_by("position").values_list("asset_id", flat=True)[: per_page + 1])
    last_id = (run.detections if kind == "detections" else run.captions).order_by("id")[per_page - 1].id
    assert f"?after={last_id}" in page
    more, _ = _get(client, f"{url}?after={last_id}", HTTP_HX_REQUEST="true")
    assert "<h1>" not in more and more.count(row_marker) == per_page
    assert f"/assets/{first[per_page]}/" in more and f"/assets/{first[0]}/" not in more
    _, bad = _get(client, f"{url}?after=oops")  # a bad cursor starts from the top
    assert bad == counts[1]


@pytest.mark.parametrize("kind", ["detections", "captions"])
def test_a_run_pages_figures_follow_its_job_live_and_say_which_frames_it_ran_on(lead, client, kind):
    client.force_login(lead)
    project, detections, captions = _world(lead, 30)
    run = detections if kind == "detections" else captions
    run.job = JobFactory(project=project, kind="detect" if kind == "detections" else "caption", status="running")
    run.frames_from = "the eval set of comparison #4"
    run.save(update_fields=["job", "frames_from"])
    url = f"/projects/{project.id}/runs/{kind}/{run.id}/"
    page = client.get(url).content.decode()
    assert 'hx-get="?part=stats" hx-trigger="every 2s"' in page and "the eval set of comparison #4" in page
    assert "reload=1" in page  # the progress bar reloads the page once the job ends

    type(run).objects.filter(id=run.id).update(answered_count=12)  # answers came in
    live = client.get(f"{url}?part=stats", HTTP_HX_REQUEST="true")
    assert live.status_code == 200 and "12 / 30" in live.content.decode() and "<h1>" not in live.content.decode()
    Job.objects.filter(id=run.job_id).update(status="succeeded", progress=1.0)
    ended = client.get(f"{url}?part=stats", HTTP_HX_REQUEST="true")
    assert ended.status_code == 286 and "hx-trigger" not in ended.content.decode()  # htmx stops polling


def test_pages_name_models_without_the_servers_paths(lead, client, settings):
    project, _, _ = _world(lead, 3)
    detector = project.model_versions.get(role="detector", is_default=True)
    detector.model, detector.adapter = "/srv/models/tiny/qwen", "./var/models/adapters/run-7"
    detector.save()
    client.force_login(lead)
    page = client.get(f"/projects/{project.id}/runs/").content.decode()
    assert '<code class="small">qwen</code>' in page and "run-7" in page
    assert "/srv/models" not in page and "var/models" not in page
    hub = ModelVersion(model="Qwen/Qwen2.5-VL-7B-Instruct", adapter="")
    assert (hub.model_shown, hub.adapter_shown) == ("Qwen/Qwen2.5-VL-7B-Instruct", "")  # a hub id as it is


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("local-dir:/srv/models/demo/clip-d1ad1a2c", "clip-d1ad1a2c"),  # open_clip's local checkpoint
        ("/srv/models/tiny/qwen", "qwen"),
        ("./var/models/adapters/run-7", "run-7"),
        ("ViT-B-32", "ViT-B-32"),
        ("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"),  # a hub id
        ("", ""),
    ],
)
def test_server_paths_are_shown_by_their_last_part_and_names_as_they_are(value, shown):
    assert without_server_path(value) == shown


@pytest.mark.parametrize(("kind", "marker"), ROW_MARKERS)
def test_a_run_page_shows_only_its_failed_or_flagged_answers_when_asked(lead, client, kind, marker):
    project, detections, captions = _world(lead, 300)
    run = detections if kind == "detections" else captions
    answers = run.detections if kind == "detections" else run.captions
    ids = list(answers.order_by("id").values_list("id", flat=True))
    failed, flagged = ids[7::50], ids[3::9]  # 6 failed; 33 flagged, more than a page of captions
    answers.filter(id__in=failed).update(ok=False, error="no JSON in the answer")
    answers.filter(id__in=flagged).update(flags=["repaired"])
    run_answers_recount(run=run)
    client.force_login(lead)
    url = f"/projects/{project.id}/runs/{kind}/{run.id}/"

    page, _ = _get(client, f"{url}?show=failed")
    assert page.count(marker) == 6 and "<strong>failed (6)</strong>" in page and "no JSON in the answer" in page
    page, _ = _get(client, f"{url}?show=flagged")
    rows = RUN_PAGE_ROWS[kind]
    assert len(failed) == 6 and len(flagged) == 33
    assert page.count(marker) == min(rows, 33)
    if rows < 33:  # the next page of the same filter
        assert "&amp;show=flagged" in page
        after = answers.filter(id__in=flagged).order_by("id").values_list("id", flat=True)[rows - 1]
        more, _ = _get(client, f"{url}?show=flagged&after={after}", HTTP_HX_REQUEST="true")
        assert more.count(marker) == min(rows, 33 - rows)
    page, _ = _get(client, f"{url}?show=nonsense")  # an unknown filter: every answer
    assert page.count(marker) == rows and "<strong>every answer</strong>" in page

    answers.update(ok=True, flags=[])
    page, _ = _get(client, f"{url}?show=failed")
    assert page.count(marker) == 0 and "No failed" in page
