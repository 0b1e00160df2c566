"""Fine-tuning from the app: launch checks, the job end to end on the tiny detector, cancel, pages."""

import re
import threading
import time
from pathlib import Path

import pytest
from django.test import Client

from apps.captioning.models import Detection
from apps.captioning.services import detection_run_start
from apps.core.errors import ApplicationError
from apps.jobs.models import Job
from apps.jobs.runner import job_execute
from apps.jobs.services import job_cancel
from apps.modelhub.models import ModelVersion
from apps.training.models import TrainingEpoch, TrainingRun, TrainingStep
from apps.training.services import training_run_start
from tests.apps.training.world import labelled_project
from tests.factories import UserFactory
from workers.train import detection_scores

QUICK = {"epochs": 2, "batch_size": 4, "learning_rate": 1e-3, "rank": 4, "alpha": 8}


@pytest.fixture
def models_dir(settings, tmp_path_factory):
    settings.MODELS_DIR = tmp_path_factory.mktemp("models")
    return settings.MODELS_DIR


@pytest.mark.django_db
def test_launch_checks_its_inputs_and_stores_a_seeded_80_20_split(models_dir):
    project, labeling_project, detector, truth = labelled_project(frames=10)
    with pytest.raises(ApplicationError, match="Unknown hyperparameters"):
        training_run_start(base_version=detector, labeling_project=labeling_project, created_by=None,
                           params={"epoch": 3}, enqueue=False)  # fmt: skip
    with pytest.raises(ApplicationError, match="learning_rate"):
        training_run_start(base_version=detector, labeling_project=labeling_project, created_by=None,
                           params={"learning_rate": 5.0}, enqueue=False)  # fmt: skip
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    with pytest.raises(ApplicationError, match="not a detector"):
        training_run_start(base_version=captioner, labeling_project=labeling_project, created_by=None, enqueue=False)
    adapter = ModelVersion.objects.create(
        project=project, role="detector", name="x+sft", model=detector.model, adapter="/a"
    )
    with pytest.raises(ApplicationError, match="LoRA needs"):
        training_run_start(base_version=adapter, labeling_project=labeling_project, created_by=None, enqueue=False)
    other, other_labels, _, _ = labelled_project(frames=5, name="Other")
    with pytest.raises(ApplicationError, match="another project"):
        training_run_start(base_version=detector, labeling_project=other_labels, created_by=None, enqueue=False)

    run = training_run_start(base_version=detector, labeling_project=labeling_project, created_by=None, enqueue=False)
    again = training_run_start(base_version=detector, labeling_project=labeling_project, created_by=None, enqueue=False)
    assert len(run.train_labels) == 8 and len(run.validation_labels) == 2
    assert run.train_labels == again.train_labels and not set(run.train_labels) & set(run.validation_labels)
    assert {int(k): v for k, v in {**run.train_labels, **run.validation_labels}.items()} == truth
    assert run.params["epochs"] == 12 and run.params["learning_rate"] == 1e-3  # the tiny profile's defaults
    assert run.job.kind == "train_detector" and run.job.queue == "gpu"


@pytest.mark.django_db(transaction=True)
def test_training_job_registers_a_detector_version_usable_for_detection(models_dir, role_groups):
    project, labeling_project, detector, _ = labelled_project(frames=10)
    run = training_run_start(
        base_version=detector, labeling_project=labeling_project, created_by=None, params=QUICK, enqueue=False
    )
    job_execute(run.job_id)
    job = Job.objects.get(id=run.job_id)
    assert job.status == "succeeded", job.error
    run.refresh_from_db()
    steps = TrainingStep.objects.filter(run=run)
    assert steps.count() == job.result["steps"] == 2 * 2  # 8 training frames, batch 4, 2 epochs
    assert list(TrainingEpoch.objects.filter(run=run).values_list("epoch", flat=True)) == [0, 1, 2]
    # Each epoch's stored score is the score of its stored predictions on the validation split.
    epochs = list(TrainingEpoch.objects.filter(run=run).order_by("epoch"))
    keys = sorted(run.validation_labels)
    for epoch in epochs:
        assert sorted(epoch.predictions) == keys and len(keys) == 2
        scores = detection_scores([epoch.predictions[k] for k in keys], [run.validation_labels[k] for k in keys])
        assert epoch.sample_f1 == pytest.approx(scores.sample_f1)
    assert job.result["before_after"]["sample_f1"] == [epochs[0].sample_f1, epochs[-1].sample_f1]
    version = run.result_version
    assert version.source == "sft" and version.adapter and Path(version.adapter, "adapter_config.json").exists()
    assert set(job.result["before_after"]) == {"sample_f1", "precision", "recall", "mistakes"}

    # The new version detects like any other.
    detection_run = detection_run_start(
        project=project, model_version=version, asset_ids=list(map(int, run.validation_labels)), created_by=None,
        enqueue=False,
    )  # fmt: skip
    job_execute(detection_run.job_id)
    assert Job.objects.get(id=detection_run.job_id).status == "succeeded"
    labels = set(Detection.objects.filter(run=detection_run).values_list("model_version_label", flat=True))
    assert labels == {f"{version.name}+{Path(version.adapter).name}"}

    # The run page and its curves.
    lead = UserFactory(role="lead")
    project.memberships.create(user=lead)
    client = Client()
    client.force_login(lead)
    page = client.get(f"/projects/{project.id}/training/{run.id}/").content.decode()
    assert "Before / after" in page and version.name in page and "Before fine-tuning (epoch 0)" in page
    curves = client.get(f"/projects/{project.id}/training/{run.id}/curves/").json()
    assert curves["epochs"] == [0, 1, 2] and len(curves["loss"]) == 4 and curves["finished"]
    assert curves["epoch_steps"] == [0, 2, 4]  # each validation at the step its epoch ended on


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_within_a_step_and_keeps_a_checkpoint(models_dir, role_groups):
    _, labeling_project, detector, _ = labelled_project(frames=10)
    run = training_run_start(
        base_version=detector, labeling_project=labeling_project, created_by=None,
        params={**QUICK, "epochs": 50, "batch_size": 2}, enqueue=False,
    )  # fmt: skip
    worker = threading.Thread(target=job_execute, args=(run.job_id,))
    worker.start()
    deadline = time.monotonic() + 300
    while not TrainingStep.objects.filter(run=run).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    job_cancel(job=Job.objects.get(id=run.job_id))
    steps_at_cancel = TrainingStep.objects.filter(run=run).count()
    worker.join(timeout=300)
    job = Job.objects.get(id=run.job_id)
    assert job.status == "cancelled"
    assert TrainingStep.objects.filter(run=run).count() <= steps_at_cancel + 1  # within one step
    checkpoints = sorted(Path(run.output_dir, "checkpoints").glob("step-*"))
    assert checkpoints and (checkpoints[-1] / "adapter" / "adapter_config.json").exists()
    assert TrainingRun.objects.get(id=run.id).result_version is None


@pytest.mark.django_db
def test_a_new_run_never_shares_its_folder_with_an_old_one_of_the_same_id(models_dir):
    """A new database over the same var/ gives its first run id 1 again: its checkpoints must not
    be found by (or written over) those of the old run #1."""
    project, labeling_project, detector, _ = labelled_project(frames=10)
    first = training_run_start(base_version=detector, labeling_project=labeling_project, created_by=None, enqueue=False)
    folder = Path(first.output_dir)
    assert folder.parent == models_dir / "adapters" / f"project-{project.id}"
    assert re.fullmatch(rf"run-{first.id}-[0-9a-f]{{8}}", folder.name)
    TrainingRun.objects.filter(id=first.id).delete()
    again = training_run_start(base_version=detector, labeling_project=labeling_project, created_by=None, enqueue=False)
    assert Path(again.output_dir) != folder
