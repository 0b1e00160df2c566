"""Ingestion end to end (staging → job → assets). Its bad-input cases (QUALITY.md 1–9) are in
tests/guarantees/test_bad_input.py."""

import pytest
from PIL import Image

from apps.media.models import Asset, AssetKind, Video
from tests.ingesting import outcomes, stored_files
from tests.media_files import image_bytes, make_video

pytestmark = pytest.mark.django_db(transaction=True)


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
