"""Upload limits over HTTP, the asset browser (keyset pages, filters) and media access."""

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.jobs.models import Job
from apps.media import services
from apps.media.models import Asset, AssetKind, Video
from tests.media_files import image_bytes
from workers.media.assets import prepare_asset


def add_asset(project, color, **extra) -> Asset:
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(image_bytes(color)))
    asset, _ = services.asset_add(project=project, prepared=prepare_asset(image), kind=AssetKind.IMAGE, **extra)
    return asset


def test_upload_page_stages_files_and_starts_an_ingest_job(client, lead, project, django_capture_on_commit_callbacks):
    client.force_login(lead)
    assert "Drop files here" in client.get(f"/projects/{project.id}/ingest/").content.decode()
    files = [SimpleUploadedFile("a.png", image_bytes()), SimpleUploadedFile("b.mp4", b"not really")]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(f"/projects/{project.id}/ingest/", {"files": files, "sample_every_seconds": "2"})
    job = Job.objects.get(kind="ingest")
    assert response["Location"] == f"/jobs/{job.id}/" and len(callbacks) == 1
    assert [f["name"] for f in job.params["files"]] == ["a.png", "b.mp4"]
    assert job.params["sample_every_seconds"] == 2.0


def test_api_upload_returns_the_job(api_client, lead, project, django_capture_on_commit_callbacks):
    api_client.force_authenticate(lead)
    with django_capture_on_commit_callbacks(execute=False):
        response = api_client.post(
            f"/api/projects/{project.id}/uploads/",
            {"files": [SimpleUploadedFile("a.png", image_bytes())], "sample_every_seconds": "0.5"},
            format="multipart",
        )
    assert response.status_code == 202 and response.json()["kind"] == "ingest"
    bad = api_client.post(f"/api/projects/{project.id}/uploads/", {"sample_every_seconds": "0"}, format="multipart")
    assert bad.status_code == 400


def test_browser_pages_with_a_keyset_and_filters_by_video_and_time(client, annotator, project, monkeypatch):
    monkeypatch.setattr("apps.media.selectors.ASSET_PAGE_SIZE", 3)
    video = Video.objects.create(project=project, original_name="film.mp4", sha256="f" * 64)
    frames = [add_asset(project, (i * 20, 0, 0), video=video, timestamp_seconds=float(i)) for i in range(5)]
    photo = add_asset(project, (0, 250, 0), original_name="photo.png")
    client.force_login(annotator)

    first = client.get(f"/projects/{project.id}/assets/").content.decode()
    assert first.count('class="asset"') == 3 and f"after={frames[2].id}" in first
    rest = client.get(f"/projects/{project.id}/assets/?after={frames[2].id}", HTTP_HX_REQUEST="true").content.decode()
    assert rest.count('class="asset"') == 3 and f"/media/assets/{photo.id}/thumb/" in rest and "after=" not in rest

    window = client.get(f"/projects/{project.id}/assets/?video={video.id}&t_from=1&t_to=3").content.decode()
    assert [f"/media/assets/{f.id}/thumb/" in window for f in frames] == [False, True, True, True, False]


def test_api_asset_list_keyset(api_client, annotator, project):
    assets = [add_asset(project, (i, 0, 0)) for i in range(5)]
    api_client.force_authenticate(annotator)
    page = api_client.get(f"/api/projects/{project.id}/assets/?limit=2").json()
    assert [a["id"] for a in page["results"]] == [assets[0].id, assets[1].id] and page["next_after"] == assets[1].id
    last = api_client.get(f"/api/projects/{project.id}/assets/?limit=4&after={assets[1].id}").json()
    assert [a["id"] for a in last["results"]] == [a.id for a in assets[2:]] and last["next_after"] is None
    assert api_client.get(f"/api/projects/{project.id}/assets/?limit=abc").status_code == 400
