import json

import pytest
from django.core.management import call_command

from apps.media.models import Asset, GroundTruthManifest, Video
from apps.projects.models import Project

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_world_creates_the_project_roster_footage_and_ground_truth(role_groups, settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    call_command("demo_world", "--seconds", "8", "--out", str(tmp_path / "world"))

    project = Project.objects.get(name="Demo world")
    manifest = json.loads((tmp_path / "world" / "manifest.json").read_text())
    roster = {c["name"]: c["description"] for c in manifest["characters"]}
    assert {c.name: c.description for c in project.characters.all()} == roster
    assert all(c.references.count() == 2 for c in project.characters.all())

    video = Video.objects.get(project=project)
    stamps = list(
        Asset.objects.filter(video=video).order_by("timestamp_seconds").values_list("timestamp_seconds", flat=True)
    )
    assert stamps == [float(s) for s in range(8)] and video.frame_count == 8

    truth = GroundTruthManifest.objects.get(project=project)
    assert truth.video == video and [s["second"] for s in truth.data["shots"]] == list(range(8))
    assert "8 frames, ground truth for 8 shots" in capsys.readouterr().out

    call_command("demo_world", "--seconds", "8", "--out", str(tmp_path / "world"))  # idempotent
    assert Asset.objects.filter(project=project).count() == 8 and project.characters.count() == 6
    assert "duplicate: all 8 sampled frames are already in the project" in capsys.readouterr().out


def test_ingest_command_reports_each_file(settings, tmp_path, capsys, project):
    from tests.media_files import image_bytes

    folder = tmp_path / "shots"
    folder.mkdir()
    (folder / "a.png").write_bytes(image_bytes((1, 2, 3)))
    (folder / "notes.txt").write_text("hello")
    call_command("ingest", str(project.id), str(folder))
    out = capsys.readouterr().out
    assert "added     a.png" in out and "refused   notes.txt" in out and "1 added, 0 duplicates, 1 refused" in out
