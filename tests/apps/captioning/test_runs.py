"""Detection and captioning runs end to end on the tiny profile, through the jobs."""

import pytest
from PIL import Image

from apps.captioning import services
from apps.captioning.models import (
    Caption,
    CaptionPipeline,
    CaptionRun,
    CaptionRunFrame,
    Detection,
    DetectionRun,
    DetectionRunFrame,
)
from apps.core.errors import ApplicationError
from apps.jobs.models import JobStatus
from apps.jobs.runner import job_execute
from apps.media.services import asset_add
from apps.modelhub.models import ModelRole, ModelVersion
from apps.modelhub.profiles import profile_models
from apps.modelhub.services import model_version_create, model_versions_ensure
from workers.media.assets import prepare_asset
from workers.vlm.parsing import parse_detection

pytestmark = pytest.mark.django_db(transaction=True)


def versions(project, role):
    return ModelVersion.objects.get(project=project, role=role, is_default=True)


def execute(run):
    job_execute(run.job_id)
    run.job.refresh_from_db()
    assert run.job.status == JobStatus.SUCCEEDED, run.job.error
    return run.job.result


def test_profiles_give_each_project_a_default_detector_and_captioner(project):
    model_versions_ensure(project=project)
    names = {(v.role, v.name, v.is_default) for v in ModelVersion.objects.filter(project=project)}
    assert names == {("detector", "tiny-qwen2.5-vl", True), ("captioner", "tiny-internvl", True)}
    paper = {(m.role, m.model) for m in profile_models("paper") if m.default}
    assert paper == {("detector", "Qwen/Qwen2.5-VL-7B-Instruct"), ("captioner", "OpenGVLab/InternVL3-38B-hf")}


def test_detection_then_captioning_store_raw_text_parsed_results_and_rates(project, lead, roster_and_frames):
    assets = roster_and_frames
    run = services.detection_run_start(
        project=project,
        model_version=versions(project, ModelRole.DETECTOR),
        asset_ids=[a.id for a in assets],
        created_by=lead,
        enqueue=False,
    )
    result = execute(run)
    detections = list(Detection.objects.filter(run=run))
    assert len(detections) == 5 == result["frames"]
    assert result["failed"] == sum(not d.ok for d in detections)
    roster = {"Ellie": [], "Victor": []}
    for detection in detections:  # what is stored is the parse of the raw answer, kept beside it
        assert detection.model_version_label == "tiny-qwen2.5-vl"
        assert detection.names == parse_detection(detection.raw_text, roster).names
    run.refresh_from_db()
    assert "Ellie: Ellie is a blob." in run.prompt_example and "[image]" in run.prompt_example

    captions = services.caption_run_start(
        project=project,
        model_version=versions(project, ModelRole.CAPTIONER),
        pipeline=CaptionPipeline.DETECTION,
        asset_ids=[a.id for a in assets[:3]],
        detection_run=run,
        created_by=lead,
        enqueue=False,
    )
    result = execute(captions)
    rows = list(Caption.objects.filter(run=captions))
    assert len(rows) == 3 and result["frames"] == 3
    for row in rows:
        assert row.characters_given == Detection.objects.get(run=run, asset=row.asset).names
        assert row.ok == (row.fields is not None)

    everyone = services.caption_run_start(
        project=project,
        model_version=versions(project, ModelRole.CAPTIONER),
        pipeline=CaptionPipeline.NO_DETECTION,
        asset_ids=[assets[0].id],
        created_by=lead,
        enqueue=False,
    )
    execute(everyone)
    assert Caption.objects.get(run=everyone).characters_given == ["Ellie", "Victor"]


def test_a_retried_run_skips_finished_frames(project, lead, roster_and_frames):
    assets = roster_and_frames
    run = services.detection_run_start(
        project=project,
        model_version=versions(project, ModelRole.DETECTOR),
        asset_ids=[a.id for a in assets],
        created_by=lead,
        enqueue=False,
    )
    execute(run)
    kept = {d.asset_id: (d.id, d.created_at) for d in Detection.objects.filter(run=run, asset__in=assets[:3])}
    Detection.objects.filter(run=run, asset__in=assets[3:]).delete()  # as if the worker died there
    from apps.jobs.models import Job

    Job.objects.filter(id=run.job_id).update(status=JobStatus.QUEUED)  # the sweeper's re-queue
    result = execute(run)
    assert result["frames"] == 5
    assert {d.asset_id: (d.id, d.created_at) for d in Detection.objects.filter(run=run, asset__in=assets[:3])} == kept
    assert "3 frames already detected, 2 to go" in run.job.log


def test_launch_errors_are_clear(project, lead, other_project, roster_and_frames):
    detector = versions(project, ModelRole.DETECTOR)
    with pytest.raises(ApplicationError, match="Choose at least one frame"):
        services.detection_run_start(project=project, model_version=detector, asset_ids=[], created_by=lead)
    with pytest.raises(ApplicationError, match="Not frames of this project"):
        services.detection_run_start(project=project, model_version=detector, asset_ids=[99999], created_by=lead)
    # Another project's frame among this one's: refused by name, and no run or frame row is left.
    foreign_frame, _ = asset_add(
        project=other_project, prepared=prepare_asset(Image.new("RGB", (32, 24))), kind="image"
    )
    own = [asset.id for asset in roster_and_frames]
    with pytest.raises(ApplicationError, match=rf"Not frames of this project: \[{foreign_frame.id}\]"):
        services.detection_run_start(
            project=project, model_version=detector, asset_ids=[*own, foreign_frame.id], created_by=lead
        )
    assert not DetectionRun.objects.exists() and not DetectionRunFrame.objects.exists()
    detection_run = services.detection_run_start(
        project=project, model_version=detector, asset_ids=own[:2], created_by=lead, enqueue=False
    )
    detection_run.job.status = JobStatus.SUCCEEDED  # as if it ran
    detection_run.job.save(update_fields=["status"])
    with pytest.raises(ApplicationError, match=rf"{len(own) - 2} frame\(s\) are not in detection run"):
        services.caption_run_start(
            project=project, model_version=versions(project, ModelRole.CAPTIONER), pipeline=CaptionPipeline.DETECTION,
            detection_run=detection_run, asset_ids=own, created_by=lead,
        )  # fmt: skip
    assert not CaptionRun.objects.exists() and not CaptionRunFrame.objects.exists()
    model_versions_ensure(project=other_project)
    foreign = versions(other_project, ModelRole.DETECTOR)
    with pytest.raises(ApplicationError, match="not a detector of this project"):
        services.detection_run_start(project=project, model_version=foreign, asset_ids=[1], created_by=lead)
    with pytest.raises(ApplicationError, match="needs a detection run"):
        services.caption_run_start(
            project=project,
            model_version=versions(project, ModelRole.CAPTIONER),
            pipeline=CaptionPipeline.DETECTION,
            asset_ids=[roster_and_frames[0].id],
            created_by=lead,
        )
    with pytest.raises(ApplicationError, match="needs the server's base URL"):
        model_version_create(project=project, role="detector", name="vllm", model="m", backend="openai")


def test_run_pages_show_outputs_next_to_the_frames(client, lead, annotator, project, roster_and_frames):
    assets = roster_and_frames
    run = services.detection_run_start(
        project=project,
        model_version=versions(project, ModelRole.DETECTOR),
        asset_ids=[a.id for a in assets],
        created_by=lead,
        enqueue=False,
    )
    execute(run)
    client.force_login(annotator)
    page = client.get(f"/projects/{project.id}/runs/detections/{run.id}/").content.decode()
    assert page.count('class="pick"') == 5 and "detect-v1" in page
    overview = client.get(f"/projects/{project.id}/runs/").content.decode()
    assert f"/projects/{project.id}/runs/detections/{run.id}/" in overview and "Detect characters" not in overview


def test_a_detector_version_with_an_adapter_runs_end_to_end(project, lead, roster_and_frames, models_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from workers.vlm.tiny import build_tiny_qwen2_5_vl

    base = AutoModelForImageTextToText.from_pretrained(build_tiny_qwen2_5_vl(models_dir / "tiny" / "qwen2_5_vl"))
    get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(tmp_path / "sft-v1")
    version = model_version_create(
        project=project, role="detector", name="tiny-sft", model="tiny/qwen2_5_vl", adapter=str(tmp_path / "sft-v1")
    )
    run = services.detection_run_start(
        project=project,
        model_version=version,
        asset_ids=[a.id for a in roster_and_frames],
        created_by=lead,
        enqueue=False,
    )
    result = execute(run)
    assert result["model"] == "tiny-sft+sft-v1"
    assert set(Detection.objects.filter(run=run).values_list("model_version_label", flat=True)) == {"tiny-sft+sft-v1"}


def test_model_servers_and_key_variables_are_restricted(project, settings):
    settings.VLM_ALLOWED_BASE_URLS = ["http://vllm.internal:8000"]
    # Compared as parsed URLs, not as string prefixes (full table: tests/workers/vlm/test_allowlist.py).
    for url, reason in [
        ("http://10.0.0.5/v1", "not on this installation's list"),
        ("http://vllm.internal:8000.evil.com/v1", "is not a number"),
        ("http://vllm.internal:8000@evil.com/v1", "user-info"),
        ("http://vllm.internal:80001/v1", "out of range"),
    ]:
        with pytest.raises(ApplicationError, match=reason):
            model_version_create(project=project, role="detector", name="x", model="m", backend="openai", base_url=url)
    assert not ModelVersion.objects.filter(project=project, name="x").exists()
    with pytest.raises(ApplicationError, match="must start with VIVE_VLM_KEY_"):
        model_version_create(
            project=project,
            role="detector",
            name="y",
            model="m",
            backend="openai",
            base_url="http://vllm.internal:8000/v1",
            api_key_env="DJANGO_SECRET_KEY",
        )


def test_the_worker_refuses_a_stored_server_off_its_allow_list_and_sends_nothing(
    project, lead, roster_and_frames, settings
):
    """A row stored under an older list (or the old prefix check): the worker's own check stops it."""
    from tests.workers.vlm.test_openai_backend import ScriptedServer

    server = ScriptedServer()
    try:
        version = ModelVersion.objects.create(
            project=project, role="detector", name="stale", model="m", backend="openai", base_url=server.url
        )
        settings.VLM_ALLOWED_BASE_URLS = ["http://127.0.0.1:1/"]  # the list no longer has that server
        run = services.detection_run_start(
            project=project,
            model_version=version,
            asset_ids=[a.id for a in roster_and_frames],
            created_by=lead,
            enqueue=False,
        )
        job_execute(run.job_id)
        run.job.refresh_from_db()
        assert run.job.status in (JobStatus.FAILED, JobStatus.QUEUED)  # failed, or waiting to be retried
        assert "not on this installation's list" in run.job.error
        assert server.requests == [] and not Detection.objects.filter(run=run).exists()
    finally:
        server.close()


def test_frames_that_met_a_backend_error_are_asked_again_on_retry(project, lead, roster_and_frames):
    from apps.jobs.models import Job

    version = model_version_create(
        project=project,
        role="detector",
        name="down",
        model="m",
        backend="openai",
        base_url="http://127.0.0.1:9/v1",  # nothing listens: every request fails
        settings_={"max_retries": 0, "timeout_seconds": 2},
    )
    run = services.detection_run_start(
        project=project,
        model_version=version,
        asset_ids=[a.id for a in roster_and_frames],
        created_by=lead,
        enqueue=False,
    )
    execute(run)
    first = set(Detection.objects.filter(run=run).values_list("id", flat=True))
    assert len(first) == 5
    assert all("backend_error" in d.flags and not d.ok for d in Detection.objects.filter(run=run))
    Job.objects.filter(id=run.job_id).update(status=JobStatus.QUEUED)
    execute(run)
    again = set(Detection.objects.filter(run=run).values_list("id", flat=True))
    assert len(again) == 5 and not (first & again)  # asked again, not kept as answers
