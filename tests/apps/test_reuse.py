"""`--reuse` (what a second `make demo` passes): a pipeline command whose work was done before with
the same settings on the same inputs shows that result instead of doing it again; any change to
what the work depends on (settings, frames, roster, labels, models) does it again."""

from io import StringIO

import pytest
from django.core.management import call_command

from apps.captioning.models import CaptionRun, DetectionRun
from apps.curation.models import ClusteringRun, EmbeddingRun, GoldSet
from apps.evaluation.models import Comparison
from apps.labeling.models import GoldLabel
from apps.modelhub.models import ModelVersion
from apps.training.models import TrainingRun
from tests.apps.curation.test_curation import add_frames
from tests.apps.evaluation.test_evaluation import _extra_frames
from tests.apps.training.world import labelled_project
from tests.factories import CharacterFactory, ProjectFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _tiny_models(settings, tmp_path_factory):
    settings.MODEL_PROFILE = "tiny"
    settings.MODELS_DIR = tmp_path_factory.mktemp("models")


def command(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_curation_reuses_an_identical_clustering_and_gold_set_and_redoes_a_changed_one():
    project = ProjectFactory(name="Reuse curation")
    pid = str(project.id)
    add_frames(project, 16)
    cluster = ("cluster", pid, "--n-neighbors", "4", "--min-cluster-size", "2", "--reuse")

    command("embed", pid)
    assert "nothing new to embed" in command("embed", pid)  # every frame has its vector already
    assert EmbeddingRun.objects.count() == 1
    first = command(*cluster)
    assert "Reusing" not in first and ClusteringRun.objects.count() == 1
    command("sample_gold", pid, "--reuse")
    again = command(*cluster)
    assert "Reusing job" in again and "clustering #" in again
    assert "Reusing job" in command("sample_gold", pid, "--reuse")
    assert (ClusteringRun.objects.count(), GoldSet.objects.count()) == (1, 1)

    # Other settings, or without --reuse, are another clustering; so are new frames.
    command("cluster", pid, "--n-neighbors", "5", "--min-cluster-size", "2", "--reuse")
    command("cluster", pid, "--n-neighbors", "5", "--min-cluster-size", "2")
    assert ClusteringRun.objects.count() == 3
    add_frames(project, 2, start=16)
    assert "2 embedded, 16 reused" in command("embed", pid)
    assert "Reusing" not in command(*cluster)
    assert ClusteringRun.objects.count() == 4
    command("sample_gold", pid, "--reuse")  # of the newest clustering: a new gold set
    assert GoldSet.objects.count() == 2


def test_runs_are_reused_until_the_roster_or_the_labels_change():
    project, labeling_project, detector, _ = labelled_project(frames=6, name="Reuse runs")
    pid = str(project.id)
    _extra_frames(project, 2)

    for _ in range(2):
        command("detect", pid, "--reuse")
        command("caption", pid, "--limit", "2", "--reuse")
    assert (DetectionRun.objects.count(), CaptionRun.objects.count()) == (1, 1)
    assert "Reusing job" in command("detect", pid, "--reuse")
    command("detect", pid)  # asked to do it again: done again
    assert DetectionRun.objects.count() == 2
    CharacterFactory(project=project, name="Newcomer", description="someone new")
    assert "Reusing" not in command("detect", pid, "--reuse")  # another roster: another prompt
    assert DetectionRun.objects.count() == 3

    train = ("train_detector", pid, "--model", detector.name, "--epochs", "1", "--reuse")
    command(*train)
    out = command(*train)
    assert "Reusing job" in out and "New detector version" in out
    assert TrainingRun.objects.count() == 1
    assert ModelVersion.objects.filter(project=project, source="sft").count() == 1

    evaluate = ("evaluate", pid, "--size", "2", "--reuse")
    first = command(*evaluate)
    again = command(*evaluate)
    assert Comparison.objects.count() == 1 and "Reusing job" in again
    report_line = next(line for line in first.splitlines() if "report:" in line)
    assert report_line in again  # the same comparison's report
    # The evaluation made detection runs of its own; `caption` still means the newest one started by hand.
    by_hand = DetectionRun.objects.order_by("id")[2]
    assert DetectionRun.objects.count() > 3
    command("caption", pid, "--limit", "2", "--reuse")
    assert CaptionRun.objects.order_by("-id").first().detection_run == by_hand
    assert "Reusing job" in command("caption", pid, "--limit", "2", "--reuse")

    # An annotator changes a label: the gold labels are new inputs, so training runs again.
    label = GoldLabel.objects.filter(labeling_project=labeling_project).order_by("id").first()
    label.names = sorted({*label.names} ^ {"Ellie"})
    label.save(update_fields=["names"])
    assert "Reusing" not in command(*train)
    assert TrainingRun.objects.count() == 2
