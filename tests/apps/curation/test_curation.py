"""Embed → cluster → sample gold through the real jobs (tiny CLIP), and the curation pages."""

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image, ImageDraw

from apps.core.errors import ApplicationError, InvalidStateError
from apps.curation import handlers as curation_handlers
from apps.curation import services
from apps.curation.handlers import embed_shard
from apps.curation.models import ClusteringRun, EmbeddingRun, GoldItem, GoldSet, ProjectionPoint
from apps.curation.vectors import vectors_load
from apps.jobs.inline import job_run_tree
from apps.jobs.models import Job, JobStatus
from apps.jobs.runner import JobContext, job_execute
from apps.media.models import Asset, AssetKind
from apps.media.services import asset_add
from tests.assertions import assert_varied_rows
from workers.media.assets import prepare_asset

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def _tiny_models(settings, models_dir):
    settings.MODEL_PROFILE = "tiny"
    settings.MODELS_DIR = models_dir


def add_frames(project, count, start=0):
    assets = []
    for index in range(start, start + count):
        scene = index % 4  # four looks, so the projection has structure
        image = Image.new("RGB", (128, 72), [(200, 40, 40), (40, 200, 40), (40, 40, 200), (220, 220, 40)][scene])
        ImageDraw.Draw(image).ellipse((index % 60, 10, index % 60 + 30, 40), fill=(index * 5 % 255, 0, 0))
        asset, _ = asset_add(project=project, prepared=prepare_asset(image), kind=AssetKind.IMAGE)
        assets.append(asset)
    return assets


def run(job):
    job_execute(job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    return job.result


def test_embedding_is_incremental(project, lead):
    add_frames(project, 10)
    first = run(services.embedding_start(project=project, created_by=lead, enqueue=False))
    assert (first["embedded"], first["reused"]) == (10, 0)
    add_frames(project, 3, start=10)
    second = run(services.embedding_start(project=project, created_by=lead, enqueue=False))
    assert (second["embedded"], second["reused"]) == (3, 10)

    old, new = EmbeddingRun.objects.order_by("id")
    old_ids, old_vectors = vectors_load(old)
    new_ids, new_vectors = vectors_load(new)
    assert len(old_ids) == 10 and new.embedded == 3 and new.reused == 10
    assert_varied_rows(new_vectors)
    assert sorted(new_ids) == sorted(Asset.objects.values_list("id", flat=True)) and new.count == 13
    for row, asset_id in enumerate(old_ids):  # carried over untouched, not recomputed
        assert (new_vectors[new_ids.index(asset_id)] == old_vectors[row]).all()


def test_a_big_embedding_runs_in_shards_and_gives_the_vectors_one_job_gives(project, lead, settings, monkeypatch):
    add_frames(project, 7)
    whole = run(services.embedding_start(project=project, created_by=lead, enqueue=False))
    whole_ids, whole_vectors = vectors_load(EmbeddingRun.objects.get(id=whole["embedding_run_id"]))
    EmbeddingRun.objects.all().delete()

    settings.RUN_SHARD_FRAMES = 3  # 7 frames → shards of 3, 3 and 1, each its own job
    job = job_run_tree(services.embedding_start(project=project, created_by=lead, enqueue=False).id, 0.05)
    assert job.status == JobStatus.SUCCEEDED, job.traceback
    shards = list(job.children.order_by("id"))
    assert [(s.kind, s.params["start"], s.params["stop"], s.result["embedded"]) for s in shards] == [
        ("embed_shard", 0, 3, 3),
        ("embed_shard", 3, 6, 3),
        ("embed_shard", 6, 7, 1),
    ]
    assert (job.result["embedded"], job.result["reused"], job.result["shards"]) == (7, 0, 3)
    sharded_ids, sharded_vectors = vectors_load(EmbeddingRun.objects.get(id=job.result["embedding_run_id"]))
    assert_varied_rows(sharded_vectors)
    assert sharded_ids == whole_ids and np.allclose(sharded_vectors, whole_vectors, atol=1e-5)
    assert not any(default_storage.exists(s.result["part"]) for s in shards)  # joined, then deleted

    # A shard retried after its worker died once its part was stored keeps that part.
    Job.objects.filter(id=shards[0].id).update(status=JobStatus.RUNNING)  # as a new attempt would be
    embed_shard(shards[0], JobContext.for_job(shards[0]))
    monkeypatch.setattr(curation_handlers, "_embed_assets", lambda *args: pytest.fail("embedded twice"))
    again = embed_shard(shards[0], JobContext.for_job(shards[0]))
    assert again["embedded"] == 3 and again["part"] == shards[0].result["part"]
    monkeypatch.undo()

    # Incremental in shards too: 4 new frames → 2 shards; the 7 vectors are carried over untouched.
    add_frames(project, 4, start=7)
    job = job_run_tree(services.embedding_start(project=project, created_by=lead, enqueue=False).id, 0.05)
    assert (job.result["embedded"], job.result["reused"], job.result["shards"]) == (4, 7, 2)
    ids, vectors = vectors_load(EmbeddingRun.objects.get(id=job.result["embedding_run_id"]))
    assert sorted(ids) == sorted(Asset.objects.values_list("id", flat=True)) and ids[:7] == sharded_ids
    assert (vectors[:7] == sharded_vectors).all()


def test_the_embed_jobs_path_decodes_in_parallel_in_a_daemonic_worker_child(tmp_path, models_dir):
    """A Celery prefork child is daemonic (no processes of its own): the embed job's path must
    still decode on several threads there, and give the vectors of plain one-at-a-time decoding."""
    from tests.assertions import assert_varied_rows
    from tests.daemonic import in_daemonic_child
    from workers.vision.clip import EmbeddingConfig, embed_images
    from workers.vision.tiny import build_tiny_clip

    spec = build_tiny_clip(models_dir / "tiny" / "clip")
    items = []
    for index in range(16):
        image = Image.new("RGB", (320, 180), (index * 15, 120, 200 - index * 10))
        ImageDraw.Draw(image).rectangle((index * 15, 30, index * 15 + 80, 150), fill=(250, 250, 250))
        image.save(tmp_path / f"{index}.jpg", quality=90)
        items.append((100 + index, tmp_path / f"{index}.jpg"))
    worker = in_daemonic_child(
        "apps.curation.handlers.embed_files",
        spec,
        items,
        django_settings={"EMBED_BATCH_SIZE": 4, "EMBED_NUM_WORKERS": 2},
    )
    sequential = embed_images(spec, items, EmbeddingConfig(batch_size=1, num_workers=0))
    assert worker.decode_threads == 2 and sequential.decode_threads == 1
    assert worker.asset_ids == sequential.asset_ids == [asset_id for asset_id, _ in items] and not worker.failed
    assert_varied_rows(sequential.vectors)
    np.testing.assert_allclose(worker.vectors, sequential.vectors, atol=1e-5)


def test_cluster_and_sample_gold_store_what_the_workers_computed(project, lead):
    add_frames(project, 24)
    run(services.embedding_start(project=project, created_by=lead, enqueue=False))
    result = run(
        services.clustering_start(
            project=project, created_by=lead, params={"n_neighbors": 5, "min_cluster_size": 3}, enqueue=False
        )
    )
    clustering = ClusteringRun.objects.get(id=result["clustering_run_id"])
    points = ProjectionPoint.objects.filter(clustering=clustering)
    assert points.count() == clustering.point_count == 24
    assert clustering.n_clusters == len(set(points.exclude(cluster=-1).values_list("cluster", flat=True))) >= 2
    assert clustering.noise_count == points.filter(cluster=-1).count()
    assert sum(clustering.cluster_sizes.values()) + clustering.noise_count == 24

    sampled = run(services.gold_sample_start(clustering=clustering, created_by=lead, params={}, enqueue=False))
    gold_set = GoldSet.objects.get(id=sampled["gold_set_id"])
    items = list(gold_set.items.all())
    assert len(items) == clustering.n_clusters and sorted(i.cluster for i in items) == sorted(
        int(c) for c in clustering.cluster_sizes
    )
    for item in items:  # each pick really belongs to the cluster it stands for
        assert points.get(asset=item.asset).cluster == item.cluster

    again = run(services.gold_sample_start(clustering=clustering, created_by=lead, params={}, enqueue=False))
    assert again["version"] == 2 and GoldSet.objects.count() == 2


def test_cluster_refuses_bad_parameters_and_missing_embeddings(project, lead):
    with pytest.raises(ApplicationError, match="Embed the project's frames"):
        services.clustering_start(project=project, created_by=lead, params={})
    with pytest.raises(ApplicationError, match="no footage"):
        services.embedding_start(project=project, created_by=lead)
    add_frames(project, 3)
    run(services.embedding_start(project=project, created_by=lead, enqueue=False))
    with pytest.raises(ApplicationError, match="n_neighbors must be between"):
        services.clustering_start(project=project, created_by=lead, params={"n_neighbors": 1})
    job = services.clustering_start(project=project, created_by=lead, params={}, enqueue=False)
    job_execute(job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "needs at least 5 frames; there are 3" in job.error


def test_gold_set_edits_and_freeze(project, lead, other_project):
    assets = add_frames(project, 4)
    gold_set = services.gold_set_create(
        project=project, clustering=None, picks=[(assets[0].id, 0, "centroid")], params={}, created_by=lead
    )
    services.gold_item_add(gold_set=gold_set, asset=assets[1], added_by=lead)
    with pytest.raises(ApplicationError, match="already in"):
        services.gold_item_add(gold_set=gold_set, asset=assets[1], added_by=lead)
    foreign = add_frames(other_project, 1, start=50)[0]
    with pytest.raises(ApplicationError, match="another project"):
        services.gold_item_add(gold_set=gold_set, asset=foreign, added_by=lead)
    services.gold_item_remove(gold_set=gold_set, item_id=GoldItem.objects.get(asset=assets[0]).id)
    services.gold_set_freeze(gold_set=gold_set)
    with pytest.raises(InvalidStateError, match="frozen"):
        services.gold_item_add(gold_set=gold_set, asset=assets[2], added_by=lead)
    assert [item.asset for item in gold_set.items.all()] == [assets[1]]


def test_projection_page_shows_the_numbers_in_the_database(client, lead, project):
    add_frames(project, 20)
    call_command("embed", str(project.id))
    call_command("cluster", str(project.id), "--n-neighbors", "5", "--min-cluster-size", "3")
    call_command("sample_gold", str(project.id))
    clustering = ClusteringRun.objects.get()
    gold_set = GoldSet.objects.get()
    client.force_login(lead)
    page = client.get(f"/projects/{project.id}/curation/clusterings/{clustering.id}/").content.decode()

    data = json.loads(page.split('<script id="projection-data" type="application/json">')[1].split("</script>")[0])
    db_points = list(ProjectionPoint.objects.filter(clustering=clustering).order_by("asset_id"))
    assert len(db_points) == 20 and len({p.cluster for p in db_points}) > 1
    # the points: four little-endian arrays (ids, x, y, clusters) from their own URL, as the script reads them
    points = client.get(data["points_url"])
    assert points.status_code == 200 and points["Content-Type"] == "application/octet-stream"
    n = len(points.content) // 16
    ids, xs, ys, clusters = (
        struct.unpack(f"<{n}{code}", points.content[k * 4 * n : (k + 1) * 4 * n]) for k, code in enumerate("iffi")
    )
    assert list(ids) == [p.asset_id for p in db_points] and list(clusters) == [p.cluster for p in db_points]
    assert xs == pytest.approx([p.x for p in db_points], abs=1e-4) and ys == pytest.approx(
        [p.y for p in db_points], abs=1e-4
    )
    assert sorted(data["gold"]) == sorted(gold_set.items.values_list("asset_id", flat=True))
    assert f'<strong id="stat-clusters">{clustering.n_clusters}</strong>' in page
    assert f'<strong id="stat-noise">{clustering.noise_count}</strong>' in page
    assert page.count('class="pick"') == gold_set.items.count()
    assert "/static/vendor/plotly-4.1.1.min.js" in page and "cdn" not in page.lower()

    overview = client.get(f"/projects/{project.id}/curation/").content.decode()
    assert f"v{gold_set.version}" in overview and "Embed new frames" in overview


def test_lead_edits_a_gold_set_from_its_page_and_others_cannot(client, lead, annotator, project):
    assets = add_frames(project, 3)
    gold_set = services.gold_set_create(
        project=project, clustering=None, picks=[(assets[0].id, None, "manual")], params={}, created_by=lead
    )
    url = f"/projects/{project.id}/gold/{gold_set.id}/edit/"
    client.force_login(annotator)
    assert client.post(url, {"action": "add", "asset_id": assets[1].id}).status_code == 403
    client.force_login(lead)
    client.post(url, {"action": "add", "asset_id": assets[1].id})
    client.post(url, {"action": "freeze"})
    response = client.post(url, {"action": "add", "asset_id": assets[2].id}, follow=True)
    assert "is frozen" in response.content.decode()
    assert gold_set.items.count() == 2


def test_a_frames_page_loads_its_gold_sets_and_a_leads_add_button(client, lead, annotator, project):
    assets = add_frames(project, 2)
    frozen = services.gold_set_create(
        project=project, clustering=None, picks=[(assets[0].id, None, "manual")], params={}, created_by=lead
    )
    services.gold_set_freeze(gold_set=frozen)
    draft = services.gold_set_create(
        project=project, clustering=None, picks=[(assets[1].id, None, "manual")], params={}, created_by=lead
    )
    client.force_login(lead)
    page = client.get(f"/projects/{project.id}/assets/{assets[0].id}/").content.decode()
    panel_url = f"/projects/{project.id}/assets/{assets[0].id}/gold/"
    assert f'hx-get="{panel_url}"' in page

    panel = client.get(panel_url).content.decode()
    assert f"/projects/{project.id}/gold/{frozen.id}/" in panel and f'/gold/{draft.id}/"' not in panel
    assert f'action="/projects/{project.id}/gold/{draft.id}/edit/"' in panel and f"Add to {draft}" in panel
    other = client.get(f"/projects/{project.id}/assets/{assets[1].id}/gold/").content.decode()
    assert f"/projects/{project.id}/gold/{draft.id}/" in other and f"/gold/{frozen.id}/" not in other
    client.force_login(annotator)
    assert "Add to" not in client.get(panel_url).content.decode()


def test_the_web_process_never_imports_the_compute_stack():
    code = (
        "import django, sys; django.setup();"
        "from django.test import Client; from django.urls import reverse;"
        "import apps.curation.handlers, apps.curation.views, apps.media.handlers;"
        "Client().get('/accounts/login/'); Client().get('/api/schema/');"
        "heavy = [m for m in ('torch', 'open_clip', 'umap', 'hdbscan', 'numba', 'sklearn') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "vivecaption_site.settings.test"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_a_project_can_name_its_own_clip(api_client, lead, project, settings, models_dir):
    from workers.vision.tiny import build_tiny_clip

    spec = build_tiny_clip(models_dir / "own")
    api_client.force_authenticate(lead)
    response = api_client.patch(
        f"/api/projects/{project.id}/",
        {"clip_model_name": spec.model_name, "clip_pretrained": spec.pretrained},
        format="json",
    )
    assert response.status_code == 200 and response.json()["clip_pretrained"] == spec.pretrained
    add_frames(project, 2)
    result = run(services.embedding_start(project=project, created_by=lead, enqueue=False))
    assert result["model"] == spec.key and EmbeddingRun.objects.get().pretrained == spec.pretrained
