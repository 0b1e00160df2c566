"""Ingestion end to end (staging → job → assets), with every bad-input case of QUALITY.md 1–9.

Each refusal asserts the specific reason, that the rest of the batch went on, and that nothing
was left behind (no asset row, no stored file, no staged upload).
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.jobs.models import JobStatus
from apps.jobs.runner import job_execute
from apps.media import services
from apps.media.models import Asset, AssetKind, Video
from tests.media_files import bomb_png, image_bytes, make_video, make_zip

pytestmark = pytest.mark.django_db(transaction=True)


def stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def ingest(project, lead):
    def run(*files: tuple[str, bytes], every: float = 1.0):
        uploads = [SimpleUploadedFile(name, data) for name, data in files]
        job = services.ingest_start(
            project=project, uploads=uploads, created_by=lead, sample_every_seconds=every, enqueue=False
        )
        job_execute(job.id)
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, job.error
        return job

    return run


def outcomes(job) -> dict[str, tuple[str, str]]:
    return {entry["name"]: (entry["outcome"], entry["reason"]) for entry in job.result["files"]}


def test_a_30_second_1080p_video_gives_30_frames_with_timestamps_and_a_reupload_adds_nothing(
    ingest, project, tmp_path, settings
):
    video_bytes = make_video(tmp_path / "clip.mp4", seconds=30, fps=2).read_bytes()
    job = ingest(("clip.mp4", video_bytes))
    assert outcomes(job)["clip.mp4"] == ("added", "30 frames added")
    video = Video.objects.get(project=project)
    assert (video.width, video.height, video.frame_count) == (1920, 1080, 30)
    assert video.duration_seconds == pytest.approx(30.0, abs=0.6)
    frames = Asset.objects.filter(video=video).order_by("timestamp_seconds")
    assert [f.timestamp_seconds for f in frames] == [float(s) for s in range(30)]
    assert all(f.kind == AssetKind.FRAME and (f.width, f.height) == (1920, 1080) for f in frames)
    assert not any(name.startswith("staging/") for name in stored_files(settings))

    again = ingest(("clip-copy.mp4", video_bytes))
    assert outcomes(again)["clip-copy.mp4"] == ("duplicate", "all 30 sampled frames are already in the project")
    assert Asset.objects.filter(project=project).count() == 30 and Video.objects.count() == 1


def test_sampling_interval_is_respected(ingest, tmp_path):
    job = ingest(("clip.mp4", make_video(tmp_path / "c.mp4", seconds=6, fps=4, size=(320, 180)).read_bytes()), every=2)
    stamps = sorted(Asset.objects.values_list("timestamp_seconds", flat=True))
    assert stamps == [0.0, 2.0, 4.0] and job.result["added"] == 3


def test_images_are_stored_as_jpeg_with_webp_thumbnails_and_duplicates_reported(ingest, project):
    job = ingest(("a.png", image_bytes((200, 10, 10))), ("b.jpg", image_bytes((10, 200, 10), fmt="JPEG")))
    assert job.result["added"] == 2
    asset = Asset.objects.get(original_name="a.png")
    assert asset.image.read()[:3] == b"\xff\xd8\xff" and asset.thumbnail.read()[8:12] == b"WEBP"
    again = ingest(("a-again.png", image_bytes((200, 10, 10))))
    assert outcomes(again)["a-again.png"] == ("duplicate", "already in the project")
    assert Asset.objects.filter(project=project).count() == 2


def test_exif_orientation_is_applied(ingest):
    import io

    image = Image.new("RGB", (80, 40), (1, 2, 3))
    exif = image.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    ingest(("phone.jpg", buffer.getvalue()))
    asset = Asset.objects.get()
    assert (asset.width, asset.height) == (40, 80)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("bomb.png", bomb_png(12_000), "possible decompression bomb"),  # 144 Mpx > the 80 Mpx limit
        ("cut.jpg", image_bytes(size=(200, 200), fmt="JPEG")[:400], "truncated or corrupt"),
        ("cut.png", image_bytes(size=(200, 200))[:100], "truncated or corrupt"),
        ("anim.gif", image_bytes(fmt="GIF"), "GIF images are not accepted"),
        ("scan.tiff", image_bytes(fmt="TIFF"), "TIFF images are not accepted"),
        ("page.png", b"<html><script>alert(1)</script></html>", "Not an accepted file"),
        ("playlist.mp4", b"#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:9/seg.ts\n", "name says video"),
        ("remote.mkv", b"ffconcat version 1.0\nfile 'http://127.0.0.1:9/a.mp4'\n", "name says video"),
        ("fake.mp4", b"\x00\x00\x00\x18ftypisom" + b"\x00" * 200, "Not a readable video"),
    ],
)
def test_bad_files_are_refused_with_their_reason_and_the_batch_goes_on(ingest, settings, name, data, reason):
    job = ingest((name, data), ("good.png", image_bytes()))
    outcome, detail = outcomes(job)[name]
    assert outcome == "refused" and reason in detail
    assert outcomes(job)["good.png"][0] == "added"
    assert list(Asset.objects.values_list("original_name", flat=True)) == ["good.png"]
    assert Video.objects.count() == 0
    assert len(stored_files(settings)) == 2  # the good image and its thumbnail; nothing staged remains


@pytest.mark.parametrize("side", [40, 60])  # Pillow warns between 1× and 2× its limit and errors above
def test_pillow_bomb_limits_refuse_too(ingest, monkeypatch, settings, side):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    settings.INGEST_MAX_IMAGE_PIXELS = 10**9
    job = ingest(("bomb.png", image_bytes(size=(side, side))))
    assert outcomes(job)["bomb.png"][0] == "refused" and "too large" in outcomes(job)["bomb.png"][1]
    assert not Asset.objects.exists()


def test_polyglot_and_spoofed_extension_are_reencoded(ingest, client, annotator):
    polyglot = image_bytes() + b"<html><script>alert(1)</script></html>"
    ingest(("polyglot.png", polyglot), ("really-a-png.jpg", image_bytes((1, 99, 1))))
    assert Asset.objects.count() == 2
    client.force_login(annotator)
    for asset in Asset.objects.all():
        response = client.get(f"/media/assets/{asset.id}/image/")
        body = b"".join(response.streaming_content)
        assert response["Content-Type"] == "image/jpeg" and response["X-Content-Type-Options"] == "nosniff"
        assert body[:3] == b"\xff\xd8\xff" and b"<script" not in body


def test_zip_members_are_read_safely(ingest, tmp_path, settings):
    inner = make_zip(tmp_path / "inner.zip", {"x.png": image_bytes()}).read_bytes()
    archive = make_zip(
        tmp_path / "pack.zip",
        {
            "shots/one.png": image_bytes((1, 1, 1)),
            "shots/two.jpg": image_bytes((2, 2, 2), fmt="JPEG"),
            "../../escape.png": image_bytes((3, 3, 3)),
            "/abs/root.png": image_bytes((4, 4, 4)),
            "nested.zip": inner,
            "notes.txt": b"hello",
            "bomb.bin": b"\x00" * 5_000_000,
        },
        symlinks={"link.png": "/etc/passwd"},
    )
    job = ingest(("pack.zip", archive.read_bytes()))
    result = outcomes(job)
    assert result["pack.zip › one.png"][0] == "added" and result["pack.zip › two.jpg"][0] == "added"
    assert result["pack.zip › escape.png"] == ("refused", "'..' in the member's path")
    assert result["pack.zip › root.png"] == ("refused", "absolute path in the archive")
    assert result["pack.zip › link.png"] == ("refused", "symbolic links are not accepted")
    assert result["pack.zip › nested.zip"] == ("refused", "archives inside archives are not accepted")
    assert result["pack.zip › notes.txt"][0] == "refused"
    assert "zip bomb" in result["pack.zip › bomb.bin"][1]
    assert Asset.objects.count() == 2
    assert not (tmp_path.parent / "escape.png").exists()
    stored = stored_files(settings)
    assert len(stored) == 4  # 2 images + their thumbnails, nothing else
    assert all(name.startswith("projects/") for name in stored)


def test_damaged_zip_is_refused(ingest):
    job = ingest(("broken.zip", b"PK\x03\x04" + b"\x00" * 100))
    assert outcomes(job)["broken.zip"][0] == "refused"


@pytest.mark.parametrize(("decoder", "reason"), [("crash", "crashed on this file (SIGSEGV)"), ("hang", "took longer")])
def test_a_decoder_that_crashes_or_hangs_marks_the_video_unreadable_and_the_worker_goes_on(
    ingest, tmp_path, settings, decoder, reason
):
    settings.INGEST_DECODER_MODULE = f"tests.fake_decoders.{decoder}"
    settings.INGEST_DECODE_TIMEOUT_SECONDS = 3
    video = make_video(tmp_path / "v.mp4", seconds=2, fps=2, size=(160, 96)).read_bytes()
    job = ingest(("evil.mp4", video), ("after.png", image_bytes()))
    assert outcomes(job)["evil.mp4"][0] == "refused" and reason in outcomes(job)["evil.mp4"][1]
    assert outcomes(job)["after.png"][0] == "added"
    assert Video.objects.count() == 0 and Asset.objects.count() == 1
    assert len(stored_files(settings)) == 2


def test_uploader_file_names_never_reach_storage(ingest, settings):
    job = ingest(("../../etc/passwd.png", image_bytes()), ("..\\..\\win.png", image_bytes((9, 9, 9))))
    assert set(outcomes(job)) == {"passwd.png", "win.png"}
    stored = stored_files(settings)
    assert len(stored) == 4  # 2 images + their thumbnails
    assert all(name.startswith("projects/") and "passwd" not in name for name in stored)


def test_webm_vp9_videos_are_sampled_too(ingest, tmp_path):
    import av

    path = tmp_path / "clip.webm"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx-vp9", rate=2)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for index in range(6):
            image = Image.new("RGB", (160, 96), (index * 40, 255 - index * 40, 90))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    job = ingest(("clip.webm", path.read_bytes()))
    assert outcomes(job)["clip.webm"] == ("added", "3 frames added")
    assert Video.objects.get().codec == "vp9"
