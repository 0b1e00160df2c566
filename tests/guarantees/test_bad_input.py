"""QUALITY.md, bad input (items 1–11): a clear error naming the problem, nothing stored or lost,
the rest of a batch goes on. One test (or a few, sharing the prefix) per item: `pytest -k test_04_`.

The ingest cases run the real ingest job in this process (`ingest` in tests/conftest.py); the
video decoder runs in its own subprocess there as it does in a worker."""

import json
from xml.etree import ElementTree

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.captioning.models import Caption, CaptionPipeline
from apps.captioning.services import caption_run_start
from apps.jobs.models import Job
from apps.jobs.runner import job_execute
from apps.labeling.label_config import label_config
from apps.media.models import Asset, AssetKind, Video
from apps.modelhub.models import ModelVersion
from apps.modelhub.services import model_version_create, model_versions_ensure
from apps.projects.models import ReferenceImage
from apps.review.services import review_create
from tests.factories import CharacterFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.ingesting import outcomes, stored_files
from tests.media_files import bomb_png, image_bytes, make_video, make_zip
from tests.workers.vlm.test_openai_backend import ScriptedServer

pytestmark = pytest.mark.django_db(transaction=True)
HOSTILE = "</script><script>alert(1)</script>\"quote' & <b>Bold</b> ]]>"


def _refused_beside_a_good_file(ingest, settings, name: str, data: bytes, reason: str) -> None:
    job = ingest((name, data), ("good.png", image_bytes()))
    outcome, detail = outcomes(job)[name]
    assert outcome == "refused" and reason in detail, detail
    assert outcomes(job)["good.png"][0] == "added"
    assert list(Asset.objects.values_list("original_name", flat=True)) == ["good.png"]
    assert Video.objects.count() == 0
    assert len(stored_files(settings)) == 2  # the good image and its thumbnail; nothing staged remains


# ---------------------------------------------------------------- 1. decompression bombs


def test_01_decompression_bomb_in_an_upload_is_refused_and_the_batch_goes_on(ingest, settings):
    _refused_beside_a_good_file(ingest, settings, "bomb.png", bomb_png(12_000), "possible decompression bomb")


@pytest.mark.parametrize("side", [40, 60])  # Pillow warns between 1× and 2× its limit and errors above
def test_01_decompression_bomb_between_one_and_two_times_pillows_limit_is_refused(ingest, monkeypatch, settings, side):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    settings.INGEST_MAX_IMAGE_PIXELS = 10**9
    job = ingest(("bomb.png", image_bytes(size=(side, side))))
    assert outcomes(job)["bomb.png"][0] == "refused" and "too large" in outcomes(job)["bomb.png"][1]
    assert not Asset.objects.exists()


def test_01_decompression_bomb_as_a_reference_image_is_a_400(api_client, lead, project, settings):
    character = CharacterFactory(project=project)
    api_client.force_authenticate(lead)
    upload = SimpleUploadedFile("bomb.png", bomb_png(12_000), content_type="image/png")
    response = api_client.post(
        f"/api/projects/{project.id}/characters/{character.id}/references/", {"image": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert "bomb.png" in json.dumps(response.json()) and "too large" in json.dumps(response.json()).lower()
    assert not ReferenceImage.objects.exists() and stored_files(settings) == []


# ---------------------------------------------------------------- 2. truncated or corrupt images


@pytest.mark.parametrize(
    ("name", "data"),
    [("cut.jpg", image_bytes(size=(200, 200), fmt="JPEG")[:400]), ("cut.png", image_bytes(size=(200, 200))[:100])],
)
def test_02_truncated_or_corrupt_image_is_a_per_file_error(ingest, settings, name, data):
    _refused_beside_a_good_file(ingest, settings, name, data, "truncated or corrupt")


# ---------------------------------------------------------------- 3. polyglots, spoofed types


def test_03_polyglot_and_spoofed_type_are_reencoded_and_served_as_images_never_html(ingest, client, annotator):
    polyglot = image_bytes() + b"<html><script>alert(1)</script></html>"
    job = ingest(
        ("polyglot.png", polyglot),
        ("really-a-png.jpg", image_bytes((1, 99, 1))),
        ("page.png", b"<html><script>alert(1)</script></html>"),  # an image's name, HTML inside
    )
    assert outcomes(job)["page.png"][0] == "refused" and "Not an accepted file" in outcomes(job)["page.png"][1]
    assert Asset.objects.count() == 2
    client.force_login(annotator)
    for asset in Asset.objects.all():
        served = (("image", "image/jpeg", b"\xff\xd8\xff"), ("thumb", "image/webp", b"RIFF"))
        for variant, content_type, magic in served:
            response = client.get(f"/media/assets/{asset.id}/{variant}/")
            body = b"".join(response.streaming_content)
            assert response["Content-Type"] == content_type and response["X-Content-Type-Options"] == "nosniff"
            assert body.startswith(magic) and b"<script" not in body


# ---------------------------------------------------------------- 4. formats outside the allow-list


@pytest.mark.parametrize(("name", "fmt"), [("anim.gif", "GIF"), ("scan.tiff", "TIFF"), ("old.bmp", "BMP")])
def test_04_image_format_outside_the_allow_list_is_refused(ingest, settings, name, fmt):
    _refused_beside_a_good_file(ingest, settings, name, image_bytes(fmt=fmt), "not accepted")


def test_04_video_codec_outside_the_allow_list_is_refused(ingest, settings, tmp_path):
    video = make_video(tmp_path / "lossless.mkv", seconds=2, fps=2, size=(64, 48), codec="ffv1").read_bytes()
    _refused_beside_a_good_file(ingest, settings, "lossless.mkv", video, "Video codec 'ffv1' is not accepted")


# ---------------------------------------------------------------- 5. fake videos


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("playlist.mp4", b"#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:9/seg.ts\n", "name says video"),
        ("remote.mkv", b"ffconcat version 1.0\nfile 'http://127.0.0.1:9/a.mp4'\n", "name says video"),
        ("fake.mp4", b"\x00\x00\x00\x18ftypisom" + b"\x00" * 200, "Not a readable video"),
    ],
)
def test_05_fake_video_is_refused(ingest, settings, name, data, reason):
    _refused_beside_a_good_file(ingest, settings, name, data, reason)


def test_05_video_demuxing_is_limited_to_the_local_file_protocol(monkeypatch, tmp_path):
    """Every container is opened with protocol_whitelist=file, so references inside it to http://,
    concat: or other protocols cannot be followed."""
    import av

    from workers.media import video

    path = make_video(tmp_path / "v.mp4", seconds=1, fps=2, size=(64, 48))
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *args, **kwargs: opened.append(kwargs) or real_open(*args, **kwargs))
    container, _ = video._open(path)
    container.close()
    assert opened and all(call["options"] == {"protocol_whitelist": "file"} for call in opened)


# ---------------------------------------------------------------- 6. decoders that crash or hang


@pytest.mark.parametrize(("decoder", "reason"), [("crash", "crashed on this file (SIGSEGV)"), ("hang", "took longer")])
def test_06_decoder_that_crashes_or_hangs_marks_the_video_unreadable_and_the_worker_goes_on(
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


# ---------------------------------------------------------------- 7. oversize uploads, too many files


def test_07_request_over_the_size_limit_is_a_413_before_its_body_is_read(client, lead, project, settings):
    settings.INGEST_MAX_REQUEST_BYTES = 1000
    client.force_login(lead)
    response = client.post(f"/projects/{project.id}/ingest/", {"files": [SimpleUploadedFile("big.png", b"x" * 5000)]})
    assert response.status_code == 413
    assert "the limit for one request is 1,000 bytes" in response.content.decode()
    assert not Job.objects.exists() and not settings.MEDIA_ROOT.exists()


def test_07_file_over_the_per_file_limit_is_reported_and_the_others_go_on(
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


def test_07_too_many_files_is_a_400(client, lead, project, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    client.force_login(lead)
    files = [SimpleUploadedFile(f"{i}.png", image_bytes()) for i in range(3)]
    response = client.post(f"/projects/{project.id}/ingest/", {"files": files})
    assert response.status_code == 400
    assert "Too many files in one upload; the limit is 2." in response.content.decode()
    assert not Job.objects.exists() and not settings.MEDIA_ROOT.exists()


# ---------------------------------------------------------------- 8. zip uploads


def test_08_zip_bombs_traversal_names_symlinks_and_nested_archives_are_refused(ingest, tmp_path, settings):
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
    assert len(stored) == 4  # 2 images + their thumbnails, nothing else: nothing extracted by member name
    assert all(name.startswith("projects/") for name in stored)


def test_08_damaged_zip_is_refused(ingest):
    job = ingest(("broken.zip", b"PK\x03\x04" + b"\x00" * 100))
    assert outcomes(job)["broken.zip"][0] == "refused"


# ---------------------------------------------------------------- 9. path traversal


def test_09_uploader_file_names_never_reach_storage(ingest, settings):
    job = ingest(("../../etc/passwd.png", image_bytes()), ("..\\..\\win.png", image_bytes((9, 9, 9))))
    assert set(outcomes(job)) == {"passwd.png", "win.png"}
    stored = stored_files(settings)
    assert len(stored) == 4  # 2 images + their thumbnails
    assert all(name.startswith("projects/") and "passwd" not in name for name in stored)


def test_09_path_traversal_in_media_urls_is_not_routed(ingest, client, annotator):
    ingest(("still.png", image_bytes()))
    asset = Asset.objects.get()
    client.force_login(annotator)
    assert client.get(f"/media/assets/{asset.id}/image/").status_code == 200  # the asset is there to reach
    for url in (
        f"/media/assets/{asset.id}/../../../etc/passwd",
        f"/media/assets/{asset.id}/image/../../../../settings.py",
        f"/media/assets/{asset.id}/..%2f..%2fsettings.py/",
        f"/media/assets/{asset.id}%2f..%2f..%2fetc%2fpasswd/image/",
    ):
        assert client.get(url).status_code == 404, url


# ---------------------------------------------------------------- 10. bad VLM output

GOOD = {"scene": "Ellie waves", "background": "a beach", "characters": [], "salient_objects": "an umbrella"}
# (what the model server answers, stored as a caption?, its flags)
BAD_ANSWERS = [
    ("Here is the caption:\n" + json.dumps(GOOD) + "\nHope this helps!", True, ["prose_around_json"]),
    ("```json\n" + json.dumps(GOOD) + "\n```", True, ["code_fence"]),
    (json.dumps(GOOD)[:-1] + ",}", True, ["trailing_comma"]),
    (json.dumps(GOOD)[:55], True, ["truncated"]),  # cut off at max tokens: what was read, flagged
    ('{"scene": 5, "background": "y", "characters": [], "salient_objects": ""}', False, []),  # wrong types
    ("", False, ["empty"]),
]


def test_10_bad_vlm_output_is_parsed_or_repaired_and_flagged_or_rejected_with_the_raw_text_kept(project, lead, client):
    from apps.media.services import asset_add
    from workers.media.assets import prepare_asset

    server = ScriptedServer()
    server.script = [("ok", answer) for answer, _, _ in BAD_ANSWERS]
    try:
        captioner = model_version_create(
            project=project, role="captioner", name="served", model="m", backend="openai",
            base_url=server.url, settings_={"concurrency": 1, "max_retries": 0, "timeout_seconds": 5},
        )  # fmt: skip
        assets = [
            asset_add(
                project=project,
                prepared=prepare_asset(Image.new("RGB", (48, 32), (i * 40, 9, 9))),
                kind=AssetKind.FRAME,
            )[0]
            for i in range(len(BAD_ANSWERS))
        ]
        run = caption_run_start(
            project=project, model_version=captioner, pipeline=CaptionPipeline.NO_DETECTION,
            asset_ids=[a.id for a in assets], created_by=lead, enqueue=False,
        )  # fmt: skip
        job_execute(run.job_id)
    finally:
        server.close()
    run.job.refresh_from_db()
    captions = {c.asset_id: c for c in Caption.objects.filter(run=run)}
    assert len(captions) == len(BAD_ANSWERS)
    for asset, (answer, ok, flags) in zip(assets, BAD_ANSWERS, strict=True):
        caption = captions[asset.id]
        assert caption.raw_text == answer  # kept whatever became of it
        assert caption.ok == ok and (caption.fields is not None) == ok, answer
        assert set(flags) <= set(caption.flags), (answer, caption.flags)
    assert run.job.result["failed"] == sum(not ok for _, ok, _ in BAD_ANSWERS) == 2
    client.force_login(lead)
    page = client.get(f"/projects/{project.id}/runs/captions/{run.id}/").content.decode()
    assert "<strong>2</strong>not in the schema" in page and "<strong>6 / 6</strong>frames" in page  # the rate


# ---------------------------------------------------------------- 11. hostile text


def test_11_hostile_names_are_escaped_in_pages_json_and_label_studio_xml(client, lead, project):
    project.name = HOSTILE
    project.save()
    character = CharacterFactory(project=project, name=HOSTILE, description=HOSTILE, aliases=[HOSTILE])
    client.force_login(lead)
    for url in ("/projects/", f"/projects/{project.id}/", f"/projects/{project.id}/characters/{character.id}/"):
        body = client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in body and "<b>Bold</b>" not in body, url
        assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in body, url
    api = client.get(f"/api/projects/{project.id}/characters/")
    assert api["Content-Type"] == "application/json" and api.json()["results"][0]["name"] == HOSTILE
    config = label_config([(HOSTILE, 'http://app/x?a=1&b="2"><script>'), ("Plain", "")])
    hostile_choice, _ = ElementTree.fromstring(config).iter("Choice")  # well-formed XML despite the names
    assert hostile_choice.get("value") == HOSTILE and "&lt;script&gt;" in hostile_choice.get("html")


def test_11_hostile_captions_are_escaped_on_the_run_review_and_frame_pages(client, project):
    from apps.media.services import asset_add
    from workers.media.assets import prepare_asset

    reviewer = UserFactory(role="lead")
    MembershipFactory(project=project, user=reviewer)
    ProjectFactory()  # another project, so ids differ from 1
    asset, _ = asset_add(
        project=project, prepared=prepare_asset(Image.new("RGB", (48, 32), (9, 9, 9))), kind=AssetKind.FRAME
    )
    model_versions_ensure(project=project)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    runs = [
        caption_run_start(
            project=project,
            model_version=captioner,
            pipeline=CaptionPipeline.NO_DETECTION,
            asset_ids=[asset.id],
            created_by=None,
            enqueue=False,
        )  # fmt: skip
        for _ in range(2)
    ]
    fields = {"scene": HOSTILE, "background": HOSTILE, "characters": [{"name": HOSTILE, "description": HOSTILE}]}
    for run in runs:
        Caption.objects.create(
            run=run, asset=asset, fields={**fields, "salient_objects": HOSTILE}, raw_text=HOSTILE,
            model_version_label="m",
        )  # fmt: skip
    review = review_create(baseline=runs[0], candidate=runs[1], created_by=None)
    client.force_login(reviewer)
    pages = [
        f"/projects/{project.id}/runs/captions/{runs[0].id}/",
        f"/projects/{project.id}/reviews/{review.id}/",
        f"/projects/{project.id}/assets/{asset.id}/record/",
    ]
    for url in pages:
        response = client.get(url)
        body = response.content.decode()
        assert response.status_code == 200, url
        assert "<script>alert(1)</script>" not in body and "<b>Bold</b>" not in body, url
        assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in body, url
