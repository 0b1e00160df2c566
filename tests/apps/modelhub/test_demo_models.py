"""`manage.py demo_models`: the demo's models are trained once, cached by world seed and training
code, registered as the demo project's defaults, and a second run reuses them (no duplicates)."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.jobs.models import Job
from apps.modelhub.handlers import DEMO_CAPTIONER, DEMO_DETECTOR, demo_models_folder
from apps.modelhub.models import ModelVersion
from apps.projects.models import Project
from apps.training.services import sft_defaults

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_models_train_once_and_become_the_demo_defaults(role_groups, settings, tmp_path, capsys):
    settings.VAR_DIR, settings.MODELS_DIR = tmp_path, tmp_path / "models"
    call_command("seed_demo")
    call_command("demo_world", "--seconds", "6", "--out", str(tmp_path / "world"))
    project = Project.objects.get(name="Demo world")

    call_command("demo_models", "Demo world")
    assert "Demo models trained" in capsys.readouterr().out
    folder = demo_models_folder(7)
    defaults = {v.role: v for v in ModelVersion.objects.filter(project=project, is_default=True)}
    captioner_folder = Path(defaults["captioner"].model)
    assert defaults["captioner"].name == DEMO_CAPTIONER and captioner_folder.parent == folder
    assert captioner_folder.name.startswith("captioner-")  # named by its settings too
    marker = json.loads((captioner_folder / "VIVE_DEMO_MODEL.json").read_text())
    assert "seed 1007" in marker["trained_on"] and marker["settings"]["world_seed"] == 7
    assert defaults["detector"].name == DEMO_DETECTOR and defaults["detector"].settings["constrained"] is True
    # The toy base brings its own fine-tuning recipe to the SFT form and command.
    assert sft_defaults(defaults["detector"])["epochs"] == 30
    job = Job.objects.get(kind="demo_models")
    assert job.status == "succeeded" and job.result["reused"] is False
    # The demo CLIP becomes the project's embedding model, loaded from its own folder.
    project.refresh_from_db()
    clip_folder = Path(project.clip_model_name.removeprefix("local-dir:"))
    assert project.clip_model_name.startswith("local-dir:") and clip_folder.parent == folder.resolve()
    assert json.loads((clip_folder / "VIVE_DEMO_MODEL.json").read_text())["kind"] == "clip"

    stamp = (captioner_folder / "VIVE_DEMO_MODEL.json").stat().st_mtime_ns
    call_command("demo_models", "Demo world")
    assert "Demo models reused" in capsys.readouterr().out
    assert (captioner_folder / "VIVE_DEMO_MODEL.json").stat().st_mtime_ns == stamp
    assert ModelVersion.objects.filter(project=project, name__in=[DEMO_CAPTIONER, DEMO_DETECTOR]).count() == 2
    assert ModelVersion.objects.filter(project=project, is_default=True).count() == 2


def test_demo_models_need_a_demo_world(role_groups, project):
    with pytest.raises(CommandError, match="has no demo world"):
        call_command("demo_models", str(project.id))
