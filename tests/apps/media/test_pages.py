"""Upload limits over HTTP, the asset browser (keyset pages, filters) and media access."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.jobs.models import Job
from apps.media import services
from apps.media.models import Asset, AssetKind, Video
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
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


def test_a_request_over_the_size_limit_is_refused_before_its_body_is_read(client, lead, project, settings):
    settings.INGEST_MAX_REQUEST_BYTES = 1000
    client.force_login(lead)
    response = client.post(f"/projects/{project.id}/ingest/", {"files": [SimpleUploadedFile("big.png", b"x" * 5000)]})
    assert response.status_code == 413
    assert "the limit for one request is 1,000 bytes" in response.content.decode()
    assert not Job.objects.exists() and not settings.MEDIA_ROOT.exists()


def test_a_file_over_the_per_file_limit_is_reported_and_the_others_go_on(
    client, lead, project, settings, django_capture_on_commit_callbacks
):
    settings.INGEST_MAX_FILE_BYTES = 10_000
    client.force_login(lead)
    files = [SimpleUploadedFile("huge.png", b"x" * 300_000), SimpleUploadedFile("small.png", image_bytes())]
    with django_capture_on_commit_callbacks(execute=False):
        client.post(f"/projects/{project.id}/ingest/", {"files": files})
    job = Job.objects.get(kind="ingest")
    assert [f["name"] for f in job.params["files"]] == ["small.png"]
    assert job.params["refused"] == [{"name": "huge.png", "reason": "Over the 10,000-byte limit."}]


def test_too_many_files_is_a_clear_400(client, lead, project, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    client.force_login(lead)
    files = [SimpleUploadedFile(f"{i}.png", image_bytes()) for i in range(3)]
    response = client.post(f"/projects/{project.id}/ingest/", {"files": files})
    assert response.status_code == 400
    assert "Too many files in one upload; the limit is 2." in response.content.decode()
    assert not Job.objects.exists() and not settings.MEDIA_ROOT.exists()


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


@pytest.mark.parametrize("variant", ["image", "thumb"])
def test_a_member_of_project_a_cannot_fetch_media_of_project_b(client, annotator, variant):
    other = ProjectFactory()
    foreign = add_asset(other, (7, 7, 7))
    client.force_login(annotator)
    assert client.get(f"/media/assets/{foreign.id}/{variant}/").status_code == 404
    assert client.get(f"/media/assets/999999/{variant}/").status_code == 404
    outsider_member = UserFactory(role="annotator")
    MembershipFactory(project=other, user=outsider_member)
    client.force_login(outsider_member)
    assert client.get(f"/media/assets/{foreign.id}/{variant}/").status_code == 200


def test_path_traversal_in_media_urls_is_not_routed(client, annotator):
    client.force_login(annotator)
    for url in ("/media/assets/1/../../../etc/passwd", "/media/assets/..%2f..%2fsettings.py/image/"):
        assert client.get(url).status_code == 404
