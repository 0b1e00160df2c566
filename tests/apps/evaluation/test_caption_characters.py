"""The captions' characters scored like the detectors: each pipeline also captions the gold test
split (once, whatever the retries), its captions' names are scored against the gold labels beside
each detector's own row, and on the eval set against the demo world's truth with paired tests."""

import csv
import io
from html import unescape

import pytest
from django.test import Client
from PIL import Image
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from apps.captioning.models import Caption, CaptionRun, Detection, DetectionRun
from apps.captioning.services import run_frames_set
from apps.evaluation import handlers
from apps.evaluation import report as report_builder
from apps.evaluation.models import CaptionScore, Comparison
from apps.evaluation.services import comparison_report_save, comparison_start, eval_set_create
from apps.jobs.inline import job_run_tree
from apps.jobs.models import Job, JobStatus
from apps.jobs.runner import job_execute
from apps.media.models import Asset, AssetKind, Video
from apps.media.services import asset_add, ground_truth_store
from apps.modelhub.models import ModelVersion
from tests.apps.evaluation.test_evaluation import _extra_frames
from tests.apps.training.world import labelled_project
from tests.factories import UserFactory
from workers.media.assets import prepare_asset

SCORING = {"token_unit": "tokens", "clip_model": "tiny", "judge": None}


def _caption(*names) -> dict:
    return {
        "scene": "A scene.",
        "background": "A room.",
        "characters": [{"name": name, "description": "is there"} for name in names],
        "salient_objects": "",
    }


def _caption_run(comparison: Comparison, captions: dict[int, dict | None]) -> CaptionRun:
    """A finished caption run with the given parsed captions (None: the caption could not be parsed)."""
    run = CaptionRun.objects.create(
        project=comparison.project, model_version=comparison.captioner, pipeline="no_detection"
    )
    run_frames_set(run=run, asset_ids=list(captions))
    for asset_id, fields in captions.items():
        Caption.objects.create(
            run=run, asset_id=asset_id, fields=fields, ok=fields is not None, raw_text="{}" if fields else "oops"
        )
    return run


def _distinct_frames(project, count: int) -> list[int]:
    """Frames outside the gold set, each one different (identical pixels would be one asset)."""
    ids = []
    for index in range(count):
        prepared = prepare_asset(Image.new("RGB", (48, 32), (15 + index * 18, 120, 60)))
        ids.append(asset_add(project=project, prepared=prepared, kind=AssetKind.IMAGE)[0].id)
    assert len(set(ids)) == count
    return ids


def _demo_world_truth(project, truth: dict[int, list[str]]) -> None:
    """Make the frames a video's, one per second, with a stored manifest of who is in each shot."""
    video = Video.objects.create(project=project, original_name="demo_world.mp4", sha256="d" * 64)
    shots = []
    for second, (asset_id, names) in enumerate(truth.items()):
        Asset.objects.filter(id=asset_id).update(video=video, timestamp_seconds=second + 0.25)
        shots.append({"second": second, "characters": names})
    ground_truth_store(project=project, name="demo world", data={"shots": shots}, video=video)


def _page(comparison: Comparison, path: str = "", **query) -> str:
    lead = UserFactory(role="lead")
    comparison.project.memberships.create(user=lead)
    client = Client()
    client.force_login(lead)
    return client.get(f"/projects/{comparison.project_id}/evaluation/{comparison.id}/{path}", query).content.decode()


@pytest.fixture
def models_dir(settings, tmp_path_factory):
    settings.MODELS_DIR = tmp_path_factory.mktemp("models")
    return settings.MODELS_DIR


@pytest.mark.django_db(transaction=True)
def test_each_pipeline_captions_the_gold_test_split_once_whatever_the_retries(models_dir):
    project, _, detector, truth = labelled_project(frames=4)
    _extra_frames(project, 2)
    eval_set = eval_set_create(project=project, size=2, seed=0, created_by=None)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    comparison = comparison_start(
        eval_set=eval_set, captioner=captioner, detectors=[detector], created_by=None, enqueue=False
    )
    parent_id = comparison.job_id
    assert job_execute(parent_id) == "waiting"  # detection stages started
    Job.objects.filter(parent_id=parent_id).update(status=JobStatus.SUCCEEDED)
    for _ in range(2):  # woken, and woken again (a lost wake-up, a retried attempt): nothing twice
        Job.objects.filter(id=parent_id).update(status=JobStatus.QUEUED)
        assert job_execute(parent_id) == "waiting"
        assert Job.objects.filter(parent_id=parent_id, kind="caption").count() == 4
        assert CaptionRun.objects.filter(project=project).count() == 4
    no_detection, with_detector = comparison.pipelines.order_by("position")
    for pipeline in (no_detection, with_detector):
        assert sorted(pipeline.test_caption_run.frame_ids()) == sorted(truth)
        assert sorted(pipeline.caption_run.frame_ids()) == eval_set.frame_ids()
    assert no_detection.test_caption_run.pipeline == "no_detection"
    # The detector pipeline captions the test split from that detector's test-split detections.
    assert with_detector.test_caption_run.detection_run_id == with_detector.test_detection_run_id
    assert "on the gold test split" in Job.objects.get(id=parent_id).message


@pytest.mark.django_db(transaction=True)
def test_without_gold_labels_no_test_split_is_captioned(models_dir):
    project, _, detector, _ = labelled_project(frames=2)
    _extra_frames(project, 2)
    eval_set = eval_set_create(project=project, size=2, seed=0, created_by=None)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    comparison = comparison_start(
        eval_set=eval_set, captioner=captioner, detectors=[detector], created_by=None, enqueue=False
    )
    Comparison.objects.filter(id=comparison.id).update(test_labels={})
    job_execute(comparison.job_id)  # no test split: straight to the eval set's detections
    Job.objects.filter(parent_id=comparison.job_id).update(status=JobStatus.SUCCEEDED)
    Job.objects.filter(id=comparison.job_id).update(status=JobStatus.QUEUED)
    assert job_execute(comparison.job_id) == "waiting"
    assert Job.objects.filter(parent_id=comparison.job_id, kind="caption").count() == 2
    assert not comparison.pipelines.filter(test_caption_run__isnull=False).exists()


@pytest.mark.django_db
def test_caption_characters_on_the_test_split_score_as_sklearn_beside_the_detector(models_dir):
    project, _, detector, truth = labelled_project(frames=6)
    _extra_frames(project, 2)
    eval_set = eval_set_create(project=project, size=2, seed=0, created_by=None)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    comparison = comparison_start(
        eval_set=eval_set, captioner=captioner, detectors=[detector], created_by=None, enqueue=False
    )
    ids = sorted(truth)  # gold: [], [Ellie], [Victor], [Ellie, Sprite], [Sprite, Victor], [Ellie, Victor]
    no_detection, with_detector = comparison.pipelines.order_by("position")
    named = [["Ellie"], ["Ellie"], ["Victor", "Ellie"], ["Ellie"], None, ["Ellie", "Victor", "a stranger"]]
    no_detection.test_caption_run = _caption_run(
        comparison, {i: _caption(*names) if names is not None else None for i, names in zip(ids, named, strict=True)}
    )
    no_detection.save()
    with_detector.test_caption_run = _caption_run(comparison, {i: _caption(*truth[i]) for i in ids})
    with_detector.test_detection_run = DetectionRun.objects.create(
        project=project, model_version=detector, prompt_version="detect-v1"
    )
    run_frames_set(run=with_detector.test_detection_run, asset_ids=ids)
    with_detector.save()
    for i in ids:  # the detector is wrong once: it misses everyone in the last frame
        Detection.objects.create(
            run=with_detector.test_detection_run, asset_id=i, names=truth[i] if i != ids[-1] else []
        )

    report = report_builder.build(comparison, SCORING)
    comparison_report_save(comparison=comparison, report=report)

    captions = {row["pipeline"]: row for row in report["captions_test_split"]["pipelines"]}
    assert list(captions) == ["no detection", with_detector.label]
    assert captions["no detection"]["detector"] is None and captions[with_detector.label]["detector"] == detector.name
    binarizer = MultiLabelBinarizer(classes=["Ellie", "Sprite", "Victor", "a stranger"])
    gold = binarizer.fit_transform([truth[i] for i in ids])
    said = binarizer.transform([names or [] for names in named])  # unparseable: nobody
    summary = captions["no detection"]["summary"]
    assert summary["n"] == 6 and captions["no detection"]["unparseable"] == 1
    assert summary["f1"] == pytest.approx(f1_score(gold, said, average="samples", zero_division=1))
    assert summary["f1"] == pytest.approx((0 + 1 + 2 / 3 + 2 / 3 + 0 + 0.8) / 6)  # by hand
    assert summary["mistakes"] == pytest.approx((1 + 0 + 1 + 1 + 2 + 1) / 6)
    perfect = captions[with_detector.label]["summary"]
    assert (perfect["f1"], perfect["mistakes"]) == (1.0, 0.0)
    assert report["table1"][0]["summary"]["mistakes"] == pytest.approx(2 / 6)  # the detector's own row
    (pair,) = report["captions_test_split"]["table3"]
    assert pair["characters_f1_n"] == 6 and pair["characters_f1_mean_difference"] == pytest.approx(1 - summary["f1"])

    page = _page(comparison)
    table = page[page.index("Table 1") : page.index("Table 2")]
    # Columns: the no-detection captions, then the detector beside its pipeline's captions.
    headers = [table.index(f"{title}<br>") for title in ("no detection", detector.name, with_detector.label)]
    assert headers == sorted(headers) and table.count("captions' characters</span></th>") == 2
    assert f"{summary['f1']:.3f}" in table and "0.333" in table  # F1 of the captions; the detector's mistakes
    frames = _page(comparison, "frames/", captions="no detection", character="Victor", kind="fn")
    assert "captions of no detection: Victor, 1 false negatives" in frames and frames.count('class="pick"') == 1
    # A real project: no truth on the eval set, and the report says why.
    assert report["captions_vs_truth"] == {"reference": None, "frames": 0, "table2": [], "table3": [], "judge": []}
    assert all(row["truth_summary"] is None for row in report["table1"] + report["captions_test_split"]["pipelines"])
    assert "against the demo world's truth</td>" not in unescape(page)
    assert "On a real project this section stays empty" in page


@pytest.mark.django_db
def test_against_the_demo_worlds_truth_paired_tests_tell_right_captions_from_wrong(models_dir):
    project, _, base, _ = labelled_project(frames=2)
    eval_ids = _distinct_frames(project, 12)
    cycle = [[], ["Ellie"], ["Victor"], ["Ellie", "Sprite"], ["Sprite", "Victor"], ["Ellie", "Victor"]]
    truth = {asset_id: cycle[index % 6] for index, asset_id in enumerate(eval_ids)}
    _demo_world_truth(project, truth)
    eval_set = eval_set_create(project=project, size=12, seed=0, created_by=None)
    tuned = ModelVersion.objects.create(
        project=project, role="detector", name="fine-tuned", model=base.model, source="custom"
    )
    comparison = comparison_start(
        eval_set=eval_set, captioner=ModelVersion.objects.get(project=project, role="captioner", is_default=True),
        detectors=[base, tuned], created_by=None, enqueue=False,
    )  # fmt: skip
    no_detection, with_base, with_tuned = comparison.pipelines.order_by("position")

    def wrong(index: int, names: list[str]) -> list[str]:  # drops someone; now and then names a stranger
        return names[1:] + (["a stranger"] if index % 4 == 0 else [])

    wrong_captions = {a: _caption(*wrong(i, truth[a])) for i, a in enumerate(eval_ids)}
    no_detection.caption_run = _caption_run(comparison, wrong_captions)
    with_base.caption_run = _caption_run(comparison, wrong_captions)  # the same captions: no difference
    with_tuned.caption_run = _caption_run(comparison, {a: _caption(*truth[a]) for a in eval_ids})
    for pipeline in (no_detection, with_base, with_tuned):
        pipeline.save()

    pipelines = handlers._pipelines(comparison)
    handlers._characters_against_truth(comparison, pipelines)
    handlers._characters_against_truth(comparison, pipelines)  # a retried step writes the same rows
    stored = CaptionScore.objects.filter(pipeline=with_tuned)
    assert stored.count() == 12 and {
        (s.characters_reference, s.characters_f1, s.characters_mistakes) for s in stored
    } == {("truth", 1.0, 0)}
    first = CaptionScore.objects.get(pipeline=no_detection, asset_id=eval_ids[0])  # truth []: a stranger
    assert (first.characters_f1, first.characters_mistakes, first.characters_precision) == (0.0, 1, 0.0)

    # A judge that scores the right captions' characters high and the wrong ones low, and, on one
    # frame the truth tells apart, scores both the same.
    for score in CaptionScore.objects.filter(pipeline__comparison=comparison):
        said = 9 if score.characters_f1 == 1.0 else 3
        if score.asset_id == eval_ids[1]:
            said = 5
        fields = {"salient_objects": 7, "characters": said, "background": 7, "scene": 7}
        score.judge_status, score.judge_scores, score.judge_overall = "ok", fields, sum(fields.values()) / 4
        score.save()
    report = report_builder.build(comparison, SCORING)
    comparison_report_save(comparison=comparison, report=report)
    vs_truth = report["captions_vs_truth"]
    judge = {row["score"]: row for row in vs_truth["judge"]}
    assert set(judge) == {"judge_characters", "judge_overall"} and judge["judge_characters"]["n"] == 36
    assert judge["judge_characters"]["spearman"] > 0.8 and judge["judge_characters"]["spearman_p"] < 0.01
    # Frames where the truth prefers one caption: 12 tuned-vs-no-detection + 12 tuned-vs-base
    # (less those whose wrong caption scored F1 = 1, none here), the judge ties on frame 1's two.
    characters = judge["judge_characters"]
    assert characters["pairs"] > 0 and characters["pairs_agree"] + characters["pairs_tied"] == characters["pairs"]
    assert characters["pairs_tied"] == 2
    assert vs_truth["frames"] == 12 and vs_truth["reference"] == "the demo world's truth"
    means = {row["pipeline"]: row["characters_f1_mean"] for row in vs_truth["table2"]}
    assert means[with_tuned.label] == 1.0 and means["no detection"] < 0.7
    pairs = {(row["first"], row["second"]): row for row in vs_truth["table3"]}
    assert set(pairs) == {
        ("no detection", with_base.label),
        ("no detection", with_tuned.label),
        (with_base.label, with_tuned.label),
    }
    same = pairs[("no detection", with_base.label)]
    assert same["characters_f1_no_difference"] is True and same["characters_mistakes_no_difference"] is True
    for better in (pairs[("no detection", with_tuned.label)], pairs[(with_base.label, with_tuned.label)]):
        assert better["characters_f1_no_difference"] is False
        assert better["characters_f1_mean_difference"] > 0 and better["characters_mistakes_mean_difference"] < 0
        assert better["characters_f1_p_t_test"] < 0.01 and better["characters_f1_p_wilcoxon"] < 0.01
        assert better["characters_mistakes_p_t_test_holm"] < 0.01

    page = _page(comparison)
    section = page[page.index("Captions' characters against the demo world's truth") : page.index("Health check")]
    assert "12 of the 12 eval frames have a truth" in section and "(lower is better)" in section
    assert section.count("no difference: both pipelines scored every one of these frames the same") == 2
    assert f"{pairs[('no detection', with_tuned.label)]['characters_f1_p_t_test']:.2e}" in section
    assert "Does the judge follow the truth?" in section and f"{characters['spearman']:.2f}" in section
    assert "The demo ships no trained judge" not in section  # said only of a judge that scores alike
    constant = {"salient_objects": 8, "characters": 8, "background": 8, "scene": 8}
    CaptionScore.objects.filter(pipeline__comparison=comparison).update(judge_scores=constant, judge_overall=8.0)
    comparison_report_save(comparison=comparison, report=report_builder.build(comparison, SCORING))
    alike = _page(comparison)
    alike = alike[alike.index("Does the judge follow the truth?") : alike.index("Health check")]
    assert "(constant scores: no ranking)" in alike and "The demo ships no trained judge" in alike
    lead = UserFactory(role="lead")
    project.memberships.create(user=lead)
    client = Client()
    client.force_login(lead)
    html = unescape(client.get(f"/projects/{project.id}/evaluation/{comparison.id}/report.html").content.decode())
    assert "against the demo world's truth" in html and "Captions' characters: F1" in html
    rows = list(
        csv.reader(
            io.StringIO(client.get(f"/projects/{project.id}/evaluation/{comparison.id}/report.csv").getvalue().decode())
        )
    )
    assert ["# Captions' characters against the demo world's truth: paired tests"] in rows
    header = next(row for row in rows if set(row[:2]) == {"pipeline", "asset_id"})
    assert {"characters_f1", "characters_mistakes", "characters_reference"} <= set(header)


@pytest.mark.django_db(transaction=True)
def test_the_whole_evaluation_scores_its_captions_characters_on_both_references(models_dir):
    """End to end on the tiny models: whatever they write, every stored number is the set
    arithmetic of the caption's names against the reference."""
    project, _, detector, gold = labelled_project(frames=4)
    eval_ids = _extra_frames(project, 2)
    truth = {eval_ids[0]: [], eval_ids[1]: ["Ellie"]}
    # The gold frames' truth: the gold labels, but for one frame the annotators got wrong.
    wrong_frame = next(iter(gold))
    gold_truth = {**gold, wrong_frame: ["Ellie", "Sprite", "Victor"]}
    _demo_world_truth(project, {**truth, **gold_truth})
    eval_set = eval_set_create(project=project, size=2, seed=0, created_by=None)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    comparison = comparison_start(
        eval_set=eval_set, captioner=captioner, detectors=[detector], created_by=None, enqueue=False
    )
    parent = job_run_tree(comparison.job_id)
    assert parent.status == JobStatus.SUCCEEDED, parent.error
    comparison.refresh_from_db()
    report = comparison.report

    def f1(said: set[str], actual: set[str]) -> float:
        return 1.0 if not said and not actual else 2 * len(said & actual) / (len(said) + len(actual))

    def folded(names) -> set[str]:
        return {" ".join(name.split()).casefold() for name in names if isinstance(name, str) and name.strip()}

    for pipeline in comparison.pipelines.all():
        captions = {c.asset_id: c for c in Caption.objects.filter(run=pipeline.caption_run)}
        for score in CaptionScore.objects.filter(pipeline=pipeline):
            caption = captions[score.asset_id]
            mentions = (caption.fields or {}).get("characters", []) if caption.ok else []
            said = folded(m["name"] for m in mentions)
            assert score.characters_reference == "truth"
            assert score.characters_f1 == pytest.approx(f1(said, folded(truth[score.asset_id])))
    assert report["captions_vs_truth"]["frames"] == 2
    assert [row["summary"]["n"] for row in report["captions_test_split"]["pipelines"]] == [len(gold)] * 2
    # The test split's answers are also scored against the truth, beside the gold labels.
    for row in report["table1"]:
        detector = next(p for p in comparison.pipelines.all() if p.detector and p.detector.name == row["detector"])
        rows = Detection.objects.filter(run=detector.test_detection_run).values_list("asset_id", "names", "ok")
        said = {asset_id: names if ok else [] for asset_id, names, ok in rows}  # unparseable: nobody
        expected = [f1(set(said[a]), set(gold_truth[a])) for a in gold]
        assert row["truth_summary"]["n"] == len(gold)
        assert row["truth_summary"]["f1"] == pytest.approx(sum(expected) / len(expected))
    for row in report["captions_test_split"]["pipelines"]:
        assert row["truth_summary"]["n"] == len(gold)
    assert "sample-F1 (paper: macro F1) against the demo world's truth" in unescape(_page(comparison))
    assert len(report["captions_test_split"]["table3"]) == 1
