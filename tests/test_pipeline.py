"""Issue #17: the project's pipeline page — every stage with its state, its key number and the next
action for a lead; an annotator's labelling queue with how to sign in; a reviewer's reviews."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.captioning.models import Caption, Detection
from apps.curation.models import ClusteringRun, GoldSet
from apps.evaluation.models import CaptionScore, Comparison
from apps.jobs.models import Job
from apps.labeling.models import GoldLabel, LabelStudioAccount
from apps.media.models import Asset
from apps.pipeline.selectors import STAGE_JOB_KINDS, StageState, project_pipeline
from apps.review.models import CaptionFlag, CaptionRevision, Preference, Review, ReviewVote
from tests.scale_world import seed_world

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _stages(project) -> dict:
    return {stage.key: stage for stage in project_pipeline(project=project)}


@pytest.fixture
def world(db):
    return seed_world(300, tag="pipeline")


def test_a_new_project_starts_at_its_footage(client, project, lead):
    stages = project_pipeline(project=project)
    assert [stage.key for stage in stages] == list(STAGE_JOB_KINDS)
    assert [stage.state for stage in stages] == [StageState.NOT_STARTED] * 10
    assert [stage.key for stage in stages if stage.is_next] == ["footage"]
    client.force_login(lead)
    response = client.get(f"/projects/{project.id}/pipeline/")
    html, text = response.content.decode(), _text(response)
    assert "Next: Upload footage" in text and "No footage yet" in text and "Nothing exported yet" in text
    assert f'href="/projects/{project.id}/ingest/">Next: Upload footage' in html
    assert text.count("Not started") == 10 and "Every stage is done" not in text


def test_every_stage_of_a_whole_project_is_done_with_its_key_number(client, world):
    project = world.project
    stages = _stages(project)
    assert {key: stage.state for key, stage in stages.items()} == dict.fromkeys(STAGE_JOB_KINDS, StageState.DONE)
    assert not any(stage.is_next for stage in stages.values())
    clustering = ClusteringRun.objects.get(project=project)
    gold_size = GoldSet.objects.get(project=project).items.count()
    assert stages["footage"].summary == "300 frames from 1 video"
    assert stages["embeddings"].summary == "300 vectors · ViT-B-32"
    assert stages["clustering"].summary == f"{clustering.n_clusters} clusters over 300 frames · 10% noise"
    assert stages["gold_set"].summary == f"v1 · {gold_size} frames · frozen"
    assert stages["labelling"].summary.startswith(f"{gold_size} of {gold_size} frames labelled · 2 annotators")
    assert stages["fine_tuning"].summary == f"Sample-F1 {0.5:.2f} → {0.5 + 5 / 22:.2f} on validation"
    table = Comparison.objects.get(project=project).report["table2"]
    means = [f"{row['pipeline']} {row['clip_score_mean']:.2f}" for row in table]
    assert len(means) == 2 and stages["evaluation"].summary.endswith("CLIPScore " + " · ".join(means))
    assert "300 frames · 0 votes" in stages["review"].summary and stages["review"].note.startswith("Ready for")
    assert stages["export"].summary.startswith("300 frames · Structured JSONL")

    client.force_login(world.lead)
    text = _text(client.get(f"/projects/{project.id}/pipeline/"))
    assert text.count("Done") == 10 and "Next:" not in text and "Every stage is done" in text
    assert "Sample-F1 0.50 → 0.73 on validation" in text


def test_a_running_stage_shows_its_progress_and_the_panel_polls_until_it_ends(client, world):
    project = world.project
    job = Job.objects.create(project=project, kind="embed", status="running", progress=0.4, message="Embedding 120/300")
    stage = _stages(project)["embeddings"]
    assert (stage.state, stage.job, stage.note) == (StageState.RUNNING, job, "Embedding 120/300")
    assert stage.is_next  # the first stage not done
    client.force_login(world.lead)
    panel = client.get(f"/projects/{project.id}/pipeline/", headers={"HX-Request": "true"})
    html = panel.content.decode()
    assert panel.status_code == 200 and 'hx-trigger="every 3s"' in html and 'aria-valuenow="40"' in html
    job.status, job.progress, job.finished_at = "succeeded", 1.0, timezone.now()
    job.save()
    ended = client.get(f"/projects/{project.id}/pipeline/?poll=1", headers={"HX-Request": "true"})
    assert ended.status_code == 286 and "every 3s" not in ended.content.decode()


def test_a_job_that_failed_since_the_last_result_needs_attention(world):
    project = world.project
    later = ClusteringRun.objects.get(project=project).created_at + timedelta(minutes=5)
    job = Job.objects.create(project=project, kind="cluster", status="failed", error="UMAP ran out of memory")
    Job.objects.filter(id=job.id).update(created_at=later)
    stage = _stages(project)["clustering"]
    assert stage.state == StageState.ATTENTION and "UMAP ran out of memory" in stage.note and stage.is_next
    assert stage.job == job
    Job.objects.filter(id=job.id).update(created_at=later - timedelta(minutes=10))
    assert _stages(project)["clustering"].state == StageState.DONE  # an older failure says nothing


def test_frames_added_since_the_embedding_need_embedding(world):
    project = world.project
    Asset.objects.create(project=project, kind="frame", sha256="f" * 64, width=8, height=8, image="x.jpg")
    stage = _stages(project)["embeddings"]
    assert stage.state == StageState.ATTENTION and stage.note == "1 frame added since: not embedded yet"
    assert stage.start_label == "Embed the new frames"


def test_an_annotator_sees_their_queue_and_how_to_sign_in_to_label_studio(client, world, settings):
    settings.LABEL_STUDIO_PUBLIC_URL = "http://127.0.0.1:8080"
    client.force_login(world.annotator)
    text = _text(client.get(f"/projects/{world.project.id}/pipeline/"))
    account = LabelStudioAccount.objects.get(user=world.annotator)
    assert "Your next step: labelling" in text and f"sign in there with {account.ls_email}" in text
    assert "Open my queue in Label Studio" in text and re.search(r"you labelled \d+, \d+ left for you", text)
    assert "Pipeline" not in text.split("Your next step")[1]  # the lead's stages are not shown

    account.delete()
    text = _text(client.get(f"/projects/{world.project.id}/pipeline/"))
    assert "You have no Label Studio account yet" in text and "Open my queue" not in text


def test_a_reviewer_sees_how_far_they_are_through_each_review(client, world):
    review = Review.objects.filter(project=world.project).order_by("-id").first()
    frame = review.frames.first()
    client.force_login(world.reviewer)
    text = _text(client.get(f"/projects/{world.project.id}/pipeline/"))
    assert f"{review.name} · you voted on 0 of {review.frame_count} frames Start reviewing" in text
    ReviewVote.objects.create(review=review, frame=frame, reviewer=world.reviewer, choices={"overall": "same"})
    text = _text(client.get(f"/projects/{world.project.id}/pipeline/"))
    assert f"{review.name} · you voted on 1 of {review.frame_count} frames Go on reviewing" in text


def test_the_project_page_is_the_pipelines_home(client, world):
    client.force_login(world.lead)
    html = client.get(f"/projects/{world.project.id}/").content.decode()
    assert f'hx-get="/projects/{world.project.id}/pipeline/"' in html
    footage = client.get(f"/projects/{world.project.id}/footage/").content.decode()
    assert "Upload footage" in footage and "Gold-set curation" not in footage  # the stages live in the pipeline


def test_a_project_of_someone_else_is_not_found(client, world, other_project, lead):
    client.force_login(lead)
    assert client.get(f"/projects/{world.project.id}/pipeline/").status_code == 404


# --- a frame's record -----------------------------------------------------------------------------


def _record(client, world, asset_id: int) -> str:
    return _text(client.get(f"/projects/{world.project.id}/assets/{asset_id}/record/"))


def test_a_frames_record_joins_its_detections_captions_scores_and_votes(client, world):
    vote = ReviewVote.objects.filter(review__project=world.project).select_related("frame").first()
    asset_id = vote.frame.asset_id
    captions = list(Caption.objects.filter(asset_id=asset_id).order_by("-id"))
    scores = list(CaptionScore.objects.filter(asset_id=asset_id))
    detections = Detection.objects.filter(asset_id=asset_id).count()
    assert len(captions) >= 2 and len(scores) >= 2 and detections >= 1
    assert len({caption.fields["scene"] for caption in captions}) >= 2  # the runs wrote different captions

    client.force_login(world.lead)
    text = _record(client, world, asset_id)
    assert [int(n) for n in re.findall(r"Caption run #(\d+) \(", text)] == [caption.run_id for caption in captions]
    assert text.count("Detection run #") == detections
    for caption in captions:
        assert caption.fields["scene"] in text
    for score in scores:
        assert f"CLIPScore {score.clip_score:.2f} · judge {score.judge_overall:.1f} overall" in text
    assert f"{vote.reviewer.username} {dict(Preference.choices)[vote.choices['overall']]}" in text


def test_a_correction_is_shown_instead_of_the_models_caption(client, world):
    caption = Caption.objects.filter(run__project=world.project).first()
    fields = {**caption.fields, "scene": "A corrected scene, by hand."}
    CaptionRevision.objects.create(caption=caption, number=1, fields=fields, author=world.reviewer)
    CaptionFlag.objects.create(caption=caption, kind="wrong_name", comment="not Victor", raised_by=world.reviewer)
    client.force_login(world.lead)
    text = _record(client, world, caption.asset_id)
    assert "A corrected scene, by hand." in text and f"corrected by {world.reviewer.username} (revision 1)" in text
    assert f"wrong name raised by {world.reviewer.username}: “not Victor”" in text


def test_others_gold_labels_and_votes_are_for_leads_only(client, world):
    label = GoldLabel.objects.filter(labeling_project__project=world.project, annotator=world.annotator).first()
    others = GoldLabel.objects.filter(asset=label.asset).exclude(annotator=world.annotator)
    assert others.exists()  # the frame has another annotator's answer too
    client.force_login(world.lead)
    text = _record(client, world, label.asset_id)
    assert world.annotator.username in text and others.first().annotator.username in text

    client.force_login(world.annotator)
    text = _record(client, world, label.asset_id)
    assert world.annotator.username in text and others.first().annotator.username not in text
    assert "Your own answers only" in text

    vote = ReviewVote.objects.filter(review__project=world.project).select_related("frame").first()
    client.force_login(world.annotator)
    assert "No review vote on this frame from you" in _record(client, world, vote.frame.asset_id)
    client.force_login(world.reviewer)
    assert world.reviewer.username in _record(client, world, vote.frame.asset_id)


def test_the_frame_page_loads_its_record(client, world, other_project, lead):
    asset_id = world.asset_ids[0]
    client.force_login(world.lead)
    page = client.get(f"/projects/{world.project.id}/assets/{asset_id}/").content.decode()
    assert f'hx-get="/projects/{world.project.id}/assets/{asset_id}/record/"' in page
    client.force_login(lead)  # of another project
    assert client.get(f"/projects/{world.project.id}/assets/{asset_id}/record/").status_code == 404
