"""Exports read back with each format's own consumer match the database, corrections and filters
included; the page previews what each filter keeps; the shell command does the same and reuses."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from apps.captioning.models import Caption
from apps.exports import selectors
from apps.exports.models import Export
from apps.exports.services import export_start
from apps.review.selectors import caption_fields_current, caption_names
from tests.apps.exports.world import export_world, run_export
from workers.exports.dense import DEFAULT_TEMPLATE, DenseTemplate

pytestmark = pytest.mark.django_db(transaction=True)


def _expected(review, candidate, baseline) -> dict[str, Caption]:
    """Asset id → the caption "best" should pick: the candidate's (the judge scores it higher, or a
    person corrected it), except frame 5 where the baseline's judge score is 9."""
    chosen = {}
    for frame in review.frames.select_related("candidate_caption", "baseline_caption"):
        chosen[frame.asset_id] = frame.baseline_caption if frame.position == 5 else frame.candidate_caption
    return chosen


def _dense(caption: Caption) -> str:
    fields = caption_fields_current(caption)
    return DenseTemplate(DEFAULT_TEMPLATE).render_fields(
        scene=fields["scene"],
        background=fields["background"],
        characters=caption_names(fields),
        salient_objects=fields["salient_objects"],
    )


def _export(project, lead, tmp_path, fmt: str, **options) -> Export:
    export = export_start(project=project, created_by=lead, format=fmt, source="best", **options)
    return run_export(export)


def _unzipped(export: Export, tmp_path: Path) -> Path:
    """The archive the page offers, unpacked: the files every reader below reads."""
    target = tmp_path / f"unzipped-{export.id}"
    with export.archive.open("rb") as handle, zipfile.ZipFile(io.BytesIO(handle.read())) as archive:
        archive.extractall(target)
    (root,) = target.iterdir()
    return root


def test_best_caption_per_frame_in_every_format_reads_back_with_its_consumer_and_matches_the_database(
    project, lead, reviewer, tmp_path
):
    import datasets
    import webdataset

    review, baseline, candidate = export_world(project, reviewer)
    expected = _expected(review, candidate, baseline)
    dense = {asset_id: _dense(caption) for asset_id, caption in expected.items()}
    assert len(expected) == 6 and len(set(dense.values())) == 6  # non-empty, and every frame differs

    jsonl = _unzipped(_export(project, lead, tmp_path, "jsonl"), tmp_path)
    rows = [json.loads(line) for line in (jsonl / "captions.jsonl").read_text().splitlines()]
    assert [int(row["key"]) for row in rows] == sorted(expected)
    for row in rows:
        caption = expected[int(row["key"])]
        fields = caption_fields_current(caption)
        assert (row["scene"], row["background"], row["salient_objects"]) == (
            fields["scene"],
            fields["background"],
            fields["salient_objects"],
        )
        assert row["characters"] == caption_names(fields)
        provenance = row["provenance"]
        assert provenance["caption_id"] == caption.id and provenance["caption_run_id"] == caption.run_id
        assert provenance["asset_id"] == caption.asset_id and provenance["project"] == project.name
        assert provenance["captioner"] == caption.model_version_label and provenance["pipeline"] == "detection"
        assert (jsonl / row["image_path"]).read_bytes() == caption.asset.image.open("rb").read()

    hf = _unzipped(_export(project, lead, tmp_path, "hf"), tmp_path)
    table = datasets.load_dataset("imagefolder", data_dir=str(hf), split="train")
    assert len(table) == 6
    for row in table:
        asset_id = int(row["key"])
        assert row["text"] == dense[asset_id]
        assert row["image"].size == (expected[asset_id].asset.width, expected[asset_id].asset.height)
        assert json.loads(row["provenance"])["caption_id"] == expected[asset_id].id

    kohya = _unzipped(_export(project, lead, tmp_path, "kohya"), tmp_path)
    meta = json.loads((kohya / "meta_cap.json").read_text())
    assert {stem: entry["caption"] for stem, entry in meta.items()} == {
        f"{asset_id:08d}": text for asset_id, text in dense.items()
    }
    for asset_id, text in dense.items():
        assert (kohya / "images" / f"{asset_id:08d}.txt").read_text() == text
        assert (kohya / "images" / f"{asset_id:08d}.jpg").is_file()

    shards = _unzipped(_export(project, lead, tmp_path, "webdataset", shard_size=4), tmp_path)
    urls = sorted(str(path) for path in shards.glob("shard-*.tar"))
    assert len(urls) == 2  # 6 samples, 4 a shard
    samples = list(webdataset.WebDataset(urls, shardshuffle=False))
    assert len(samples) == 6
    for sample in samples:
        record = json.loads(sample["json"])
        asset_id = int(record["key"])
        assert sample["txt"].decode() == dense[asset_id]
        assert sample["jpg"] == expected[asset_id].asset.image.open("rb").read()
        assert record["provenance"]["judge"]["overall"] is not None


def test_a_corrected_caption_is_exported_corrected_and_filtered_out_frames_are_absent(
    project, lead, reviewer, tmp_path
):
    review, _, candidate = export_world(project, reviewer)
    corrected = review.frames.get(position=2).candidate_caption
    assert corrected.fields["salient_objects"] != "a blue kite"  # the model's own caption is kept as it was
    flagged_asset = review.frames.get(position=4).asset_id
    fenced_asset = review.frames.get(position=1).asset_id
    export = _export(
        project,
        lead,
        tmp_path,
        "jsonl",
        caption_run=None,
        filters={"exclude_flagged": True, "require_adherence": True},
    )
    rows = {int(row["key"]): row for row in map(json.loads, _read(export, tmp_path, "captions.jsonl"))}
    assert flagged_asset not in rows and fenced_asset not in rows
    assert len(rows) == 4 and export.frames == 4
    row = rows[corrected.asset_id]
    assert row["scene"] == "Ellie and Victor fly a kite, corrected." and row["salient_objects"] == "a blue kite"
    assert row["provenance"]["corrected"] is True and row["provenance"]["revision"] == 1
    assert all(other["provenance"]["corrected"] is False for key, other in rows.items() if key != corrected.asset_id)

    scored = _export(project, lead, tmp_path, "jsonl", filters={"min_judge_score": 7})
    kept = {int(json.loads(line)["key"]) for line in _read(scored, tmp_path, "captions.jsonl")}
    assert kept == {review.frames.get(position=p).asset_id for p in (1, 2, 4, 5)}


def _read(export: Export, tmp_path: Path, name: str) -> list[str]:
    return (_unzipped(export, tmp_path) / name).read_text().splitlines()


def test_one_runs_export_holds_that_runs_captions_and_skips_an_unreadable_one(project, lead, reviewer, tmp_path):
    review, baseline, _ = export_world(project, reviewer)
    export = export_start(project=project, created_by=lead, format="dense", source="run", caption_run=baseline)
    rows = [json.loads(line) for line in _read(run_export(export), tmp_path, "captions.jsonl")]
    unreadable = review.frames.get(position=3).asset_id  # the baseline's answer there could not be read
    assert sorted(int(row["key"]) for row in rows) == sorted(set(baseline.frame_ids()) - {unreadable})
    by_asset = {c.asset_id: c for c in baseline.captions.all()}
    assert all(row["caption"] == _dense(by_asset[int(row["key"])]) for row in rows)


def test_the_preview_counts_what_each_filter_keeps_and_lints_what_would_be_exported(project, reviewer):
    export_world(project, reviewer)
    filters = selectors.ExportFilters.from_mapping(
        {
            "min_judge_score": 7,
            "require_adherence": True,
            "exclude_flagged": True,
            "only_reviewed": True,
            "only_with_characters": True,
        }
    )
    preview = selectors.export_preview(project=project, source="best", filters=filters, template=DEFAULT_TEMPLATE)
    assert preview.captioned == 6 and preview.exportable == 6
    assert preview.kept_by == {
        "min_judge_score": 4,  # frames 1, 2, 4 and 5 (the baseline's 9)
        "require_adherence": 5,  # frame 1's answer needed repair
        "exclude_flagged": 5,  # frame 4 is flagged
        "only_reviewed": 3,  # frames 0 and 4 voted on, frame 2 corrected
        "only_with_characters": 6,
    }
    assert preview.kept == 1  # frame 2: corrected, judged 8, unflagged
    assert preview.lint["frames"] == 1 and preview.lint["too_long"]["count"] == 0


def test_bad_requests_get_clear_errors_and_change_nothing(project, lead, reviewer):
    from apps.core.errors import ApplicationError

    export_world(project, reviewer)
    with pytest.raises(ApplicationError, match="Unknown placeholder|placeholder"):
        export_start(project=project, created_by=lead, format="hf", source="best", template="{who} at {background}")
    with pytest.raises(ApplicationError, match="caption run"):
        export_start(project=project, created_by=lead, format="hf", source="run")
    with pytest.raises(ApplicationError, match="min_judge_score"):
        export_start(project=project, created_by=lead, format="hf", source="best", filters={"min_judge_score": 11})
    with pytest.raises(ApplicationError, match="Unknown format"):
        export_start(project=project, created_by=lead, format="parquet", source="best")
    assert Export.objects.count() == 0


def test_the_shell_command_writes_the_folder_refuses_a_full_one_and_reuses_an_identical_export(
    project, reviewer, tmp_path
):
    export_world(project, reviewer)
    out = tmp_path / "dataset-hf"
    report = io.StringIO()
    call_command("export", str(project.id), "--format", "hf", "--out", str(out), "--reuse", stdout=report)
    assert "6 of 6 captioned frames kept" in report.getvalue()
    assert len((out / "train" / "metadata.jsonl").read_text().splitlines()) == 6
    before = (out / "train" / "metadata.jsonl").read_bytes()

    again = io.StringIO()
    call_command("export", str(project.id), "--format", "hf", "--out", str(out), "--reuse", stdout=again)
    assert "Reusing" in again.getvalue() and Export.objects.count() == 1

    with pytest.raises(CommandError, match="not empty"):
        call_command("export", str(project.id), "--format", "hf", "--out", str(out), stdout=io.StringIO())
    assert (out / "train" / "metadata.jsonl").read_bytes() == before  # nothing already there is lost


def test_the_export_page_previews_starts_and_offers_the_download(project, lead, reviewer, annotator):
    export_world(project, reviewer)
    client = Client()
    client.force_login(lead)
    page = client.get(f"/projects/{project.id}/exports/")
    assert page.status_code == 200 and "New export" in page.content.decode()
    preview = client.get(
        f"/projects/{project.id}/exports/preview/",
        {"source": "best", "format": "hf", "template": DEFAULT_TEMPLATE, "shard_size": 1000, "exclude_flagged": "on"},
    ).content.decode()
    assert "<strong>5</strong> frames will be exported" in preview and "not flagged" in preview
    response = client.post(
        f"/projects/{project.id}/exports/new/",
        {"source": "best", "format": "kohya", "template": "{characters}: {scene}", "shard_size": 1000},
    )
    export = Export.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.id}/exports/{export.id}/"
    run_export(export)
    detail = client.get(response["Location"]).content.decode()
    assert "Download the archive" in detail and "Lint of what was exported" in detail
    download = client.get(f"/projects/{project.id}/exports/{export.id}/download/")
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment")
    names = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))).namelist()
    assert sum(name.endswith(".txt") for name in names) == 6

    for user in (reviewer, annotator):
        other = Client()
        other.force_login(user)
        assert other.get(f"/projects/{project.id}/exports/").status_code == 403
        assert other.get(f"/projects/{project.id}/exports/{export.id}/download/").status_code == 403


def test_the_api_previews_starts_and_reports_an_export(project, lead, reviewer, api_client):
    export_world(project, reviewer)
    api_client.force_authenticate(lead)
    preview = api_client.post(
        f"/api/projects/{project.id}/exports/preview/", {"only_reviewed": True}, format="json"
    ).json()
    assert preview["kept"] == 3 and preview["kept_by"] == {"only_reviewed": 3}
    bad = api_client.post(f"/api/projects/{project.id}/exports/", {"format": "hf", "template": "{nope}"}, format="json")
    assert bad.status_code == 400 and "placeholder" in json.dumps(bad.json())
    created = api_client.post(
        f"/api/projects/{project.id}/exports/",
        {"format": "webdataset", "shard_size": 2, "filters": {"only_reviewed": True}},
        format="json",
    )
    assert created.status_code == 201 and created.json()["status"] == "queued"
    run_export(Export.objects.get(id=created.json()["id"]))
    detail = api_client.get(f"/api/projects/{project.id}/exports/{created.json()['id']}/").json()
    assert detail["frames"] == 3 and detail["status"] == "succeeded" and detail["download_url"].endswith("/download/")


def test_a_retried_export_job_keeps_the_folder_its_first_attempt_finished(project, lead, reviewer, tmp_path):
    """The worker died after writing the shell's folder, before the archive was stored: the next
    attempt archives that folder as it is instead of refusing it as not empty."""
    from apps.exports import handlers

    export_world(project, reviewer)
    out = tmp_path / "jsonl"
    export = _export(project, lead, tmp_path, "jsonl", out_dir=str(out))
    written = (out / "captions.jsonl").read_bytes()
    summary = handlers._written_before(out, export.id)
    assert summary["frames"] == 6 and summary["files"] == export.result["files"]
    assert handlers._written_before(out, export.id + 1) is None  # another export's folder is never taken
    export.job.status, export.job.attempts = "queued", 0
    export.job.save()
    export.archive, export.frames = "", 0
    export.save()
    rerun = run_export(export)
    assert rerun.frames == 6 and rerun.archive and (out / "captions.jsonl").read_bytes() == written
