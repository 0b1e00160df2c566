"""The reviewer workspace: blind A/B votes stored unblinded, corrections as revisions, flags a lead
resolves, filters, results, permissions, and a page whose query count does not grow with the data."""

from html import unescape

import pytest
from django.db import connection

from apps.core.errors import ApplicationError
from apps.core.permissions import Role
from apps.review import selectors, services
from apps.review.models import CaptionFlag, CaptionRevision, ReviewVote
from apps.review.selectors import FrameFilters, candidate_side
from tests.apps.review.world import review_world
from tests.conftest import _member
from workers.metrics.agreement import agreement, win_rate

pytestmark = pytest.mark.django_db


def _shown(review, reviewer, frame, prefer: str) -> str:
    """The side (A or B) a reviewer clicks to prefer the candidate or the baseline on this frame."""
    candidate_as = candidate_side(review.id, reviewer.id, frame.asset_id)
    if prefer == "same":
        return "same"
    return candidate_as if prefer == "candidate" else ("B" if candidate_as == "A" else "A")


def test_a_review_holds_the_frames_both_runs_captioned_with_what_its_filters_read(project):
    review, baseline, candidate = review_world(project, frames=8)
    frames = list(review.frames.order_by("position"))
    assert review.frame_count == len(frames) == 8
    assert [f.asset_id for f in frames] == baseline.frame_ids()
    # The baseline was given an extra character on every other frame; frame 3 is out of the schema.
    assert [f.detectors_disagree for f in frames] == [i % 2 == 0 for i in range(8)]
    assert [f.adherence_failed for f in frames] == [i == 3 for i in range(8)]
    assert "bruno" in {m.name for m in frames[0].character_marks.all()}
    assert "bruno" not in {m.name for m in frames[1].character_marks.all()}

    def positions(**filters):
        return list(
            selectors.review_frames(review=review, filters=FrameFilters(**filters)).values_list("position", flat=True)
        )

    assert positions(detectors_disagree=True) == [0, 2, 4, 6]
    assert positions(adherence_failed=True) == [3]
    assert positions(character="Bruno") == [0, 2, 4, 6]
    assert positions(character="Victor") == [1, 3, 5, 7] == positions(character=" victor ")
    assert positions() == list(range(8))


def test_blind_sides_are_drawn_per_frame_and_per_reviewer_and_kept(project):
    review, _, _ = review_world(project, frames=8)
    first, second = _member(project, Role.REVIEWER), _member(project, Role.REVIEWER)
    sides_first = [candidate_side(review.id, first.id, f.asset_id) for f in review.frames.all()]
    sides_second = [candidate_side(review.id, second.id, f.asset_id) for f in review.frames.all()]
    assert set(sides_first) == {"A", "B"}  # not always the same side
    assert sides_first != sides_second  # another reviewer, another draw
    assert sides_first == [candidate_side(review.id, first.id, f.asset_id) for f in review.frames.all()]


def test_a_vote_is_stored_unblinded_and_a_second_vote_replaces_the_first(project, reviewer):
    review, _, _ = review_world(project, frames=4)
    frame = review.frames.get(position=1)
    choices = {"overall": _shown(review, reviewer, frame, "candidate"), "scene": "same",
               "characters": _shown(review, reviewer, frame, "baseline")}  # fmt: skip
    vote = services.vote_record(frame=frame, reviewer=reviewer, choices=choices, comment="sharper")
    assert vote.choices == {"overall": "candidate", "scene": "same", "characters": "baseline"}
    assert vote.candidate_shown_as == candidate_side(review.id, reviewer.id, frame.asset_id)
    services.vote_record(frame=frame, reviewer=reviewer, choices={"overall": "same"})
    assert ReviewVote.objects.get().choices == {"overall": "same"}
    # The page shows the reviewer what they clicked, as they saw it.
    page = selectors.frame_page(review=review, reviewer=reviewer, position=1, filters=FrameFilters(), blind=True)
    assert page["shown_choices"] == {"overall": "same"} and page["vote"].id == vote.id
    with pytest.raises(ApplicationError, match="better overall"):
        services.vote_record(frame=frame, reviewer=reviewer, choices={"scene": "A"})
    with pytest.raises(ApplicationError, match="choose A, B or same"):
        services.vote_record(frame=frame, reviewer=reviewer, choices={"overall": "candidate"})


def test_annotators_cannot_vote_or_correct(project, annotator):
    review, _, _ = review_world(project, frames=2)
    frame = review.frames.first()
    with pytest.raises(ApplicationError, match="reviewers and leads"):
        services.vote_record(frame=frame, reviewer=annotator, choices={"overall": "A"})
    with pytest.raises(ApplicationError, match="reviewers and leads"):
        services.caption_correct(caption=frame.candidate_caption, fields={"scene": "x"}, author=annotator)
    assert not ReviewVote.objects.exists() and not CaptionRevision.objects.exists()


def test_a_correction_is_a_new_revision_the_model_caption_is_kept_and_a_lead_resolves_it(project, reviewer, lead):
    review, _, candidate = review_world(project, frames=4)
    frame = review.frames.get(position=2)
    caption = frame.candidate_caption
    original = dict(caption.fields)
    services.caption_correct(caption=caption, fields={"background": "a windy meadow"}, author=reviewer, review=review)
    second = services.caption_correct(
        caption=caption, fields={"characters": [{"name": "Ellie", "description": "waving"}]}, author=reviewer
    )
    caption.refresh_from_db()
    assert caption.fields == original  # the model's caption, untouched
    assert second.number == 2 and second.fields["background"] == "a windy meadow"
    assert second.fields["characters"] == [{"name": "Ellie", "description": "waving"}]
    assert selectors.caption_fields_current(caption) == second.fields  # what exports read
    with pytest.raises(ApplicationError, match="caption schema"):
        services.caption_correct(caption=caption, fields={"scene": ""}, author=reviewer)
    with pytest.raises(ApplicationError, match="changes nothing"):
        services.caption_correct(caption=caption, fields={"background": "a windy meadow"}, author=reviewer)
    assert caption.revisions.count() == 2

    # The correction waits for a lead, beside a flag raised while voting.
    flag_side = _shown(review, reviewer, frame, "baseline")
    services.vote_record(frame=frame, reviewer=reviewer, choices={"overall": "same"}, flags=[(flag_side, "wrong_name")])
    queue = selectors.flag_queue(project=project)
    assert {entry["caption"].id for entry in queue} == {caption.id, frame.baseline_caption_id}
    corrected = next(entry for entry in queue if entry["caption"].id == caption.id)
    assert corrected["fields"] == second.fields and [f.kind for f in corrected["flags"]] == ["corrected"]
    with pytest.raises(ApplicationError, match="Only a lead"):
        services.caption_flags_resolve(caption=caption, lead=reviewer)
    assert services.caption_flags_resolve(caption=caption, lead=lead, resolution="checked") == 1
    assert [entry["caption"].id for entry in selectors.flag_queue(project=project)] == [frame.baseline_caption_id]
    # A lead's own correction needs no second look.
    services.caption_correct(caption=frame.baseline_caption, fields={"scene": "Ellie in a meadow."}, author=lead)
    assert (
        CaptionFlag.objects.filter(caption=frame.baseline_caption, kind="corrected", resolved_at__isnull=True).count()
        == 0
    )


def test_results_match_the_votes_counted_by_hand(project):
    review, _, _ = review_world(project, frames=6)
    first, second = _member(project, Role.REVIEWER), _member(project, Role.REVIEWER)
    frames = list(review.frames.order_by("position"))
    verdicts = {  # overall, from the candidate's side
        first: ["candidate", "candidate", "same", "baseline", "candidate", "candidate"],
        second: ["candidate", "same", "same", "baseline", "baseline"],
    }
    for user, said in verdicts.items():
        for frame, prefer in zip(frames, said, strict=False):
            services.vote_record(frame=frame, reviewer=user, choices={"overall": _shown(review, user, frame, prefer)})
    results = selectors.review_results(review=review)
    overall = next(row["result"] for row in results["pooled"] if row["field"] == "overall")
    assert (overall.wins, overall.ties, overall.losses) == (4 + 1, 1 + 2, 1 + 2)
    assert overall.rate == pytest.approx(5 / 8)
    assert overall.low < overall.rate < overall.high
    (pair,) = results["pairs"]
    assert pair["frames"] == 5
    values = {"candidate": 1, "same": 0, "baseline": -1}
    expected = agreement([values[v] for v in verdicts[first][:5]], [values[v] for v in verdicts[second]])
    assert pair["fields"][-1] == expected and expected.raw == pytest.approx(3 / 5)
    mine = next(row for row in results["per_reviewer"] if row["reviewer"] == first.username)
    assert mine["fields"][-1] == win_rate([1, 1, 0, -1, 1, 1])


def test_the_page_and_the_api_make_the_same_number_of_queries_whatever_the_size(project, reviewer, client, api_client):
    small, _, _ = review_world(project, frames=3)
    from tests.factories import ProjectFactory

    other = ProjectFactory()
    other.memberships.create(user=reviewer)
    large, _, _ = review_world(other, frames=40)
    client.force_login(reviewer)
    api_client.force_authenticate(reviewer)

    def queries(url: str, http) -> int:
        http.get(url)  # warm: sessions, content types
        executed = []
        # Counted as they run: the query log is reset when a request starts.
        with connection.execute_wrapper(lambda execute, sql, *args: executed.append(sql) or execute(sql, *args)):
            response = http.get(url)
        assert response.status_code == 200, response.content[:300]
        return len(executed)

    for name, http, path in (
        ("page", client, "/projects/{p}/reviews/{r}/?at=1"),
        ("api", api_client, "/api/projects/{p}/reviews/{r}/frame/?at=1"),
    ):
        counts = [queries(path.format(p=r.project_id, r=r.id), http) for r in (small, large)]
        assert counts[0] == counts[1] and counts[0] > 5, (name, counts)


def test_votes_and_corrections_through_the_page_survive_a_reload(project, reviewer, client):
    review, _, _ = review_world(project, frames=5)
    client.force_login(reviewer)
    url = f"/projects/{project.id}/reviews/{review.id}/"
    page = unescape(client.get(url).content.decode())
    assert "Frame 1 of 5" in page
    assert "Caption A</th>" in page and "Caption A ·" not in page  # blind: no pipeline over a caption
    frame = review.frames.get(position=0)
    side = _shown(review, reviewer, frame, "candidate")
    response = client.post(
        f"{url}frames/0/vote/", {"choice_overall": side, "choice_scene": "same"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "Frame 2 of 5" in response.content.decode()  # moved on
    assert ReviewVote.objects.get(reviewer=reviewer).choices == {"overall": "candidate", "scene": "same"}
    client.post(f"{url}frames/0/correct/", {"side": side, "field": "salient_objects", "value": "a blue kite"})
    reloaded = unescape(client.get(f"{url}?at=0").content.decode())
    assert "a blue kite" in reloaded and "revision 1" in reloaded
    assert f'name="choice_overall" value="{side}" aria-label="Overall: {side}" checked' in reloaded
    assert 'Your votes: <strong id="my-votes">1</strong>' in reloaded
    # Opening the review again lands where the reviewer stopped.
    assert "Frame 1 of 5" in unescape(client.get(url).content.decode())
    client.get(f"{url}?at=3")
    assert "Frame 4 of 5" in unescape(client.get(url).content.decode())


def test_the_api_votes_corrects_and_reports(project, reviewer, api_client):
    review, _, _ = review_world(project, frames=4)
    api_client.force_authenticate(reviewer)
    base = f"/api/projects/{project.id}/reviews/{review.id}"
    frame = api_client.get(f"{base}/frame/?at=2").json()
    assert frame["position"] == 2 and set(frame["captions"]) == {"A", "B"}
    assert frame["captions"]["A"]["fields"] != frame["captions"]["B"]["fields"]
    side = _shown(review, reviewer, review.frames.get(position=2), "candidate")
    response = api_client.post(f"{base}/votes/", {"position": 2, "choices": {"overall": side}}, format="json")
    assert response.status_code == 201 and response.json()["stored"] == {"overall": "candidate"}
    bad = api_client.post(f"{base}/votes/", {"position": 2, "choices": {"scene": "A"}}, format="json")
    assert bad.status_code == 400 and "better overall" in bad.json()["detail"]
    fixed = api_client.post(
        f"{base}/corrections/", {"position": 2, "side": "A", "fields": {"scene": "Fixed."}}, format="json"
    )
    assert fixed.status_code == 201 and fixed.json()["fields"]["scene"] == "Fixed."
    assert api_client.get(f"{base}/frame/?at=2").json()["captions"]["A"]["fields"]["scene"] == "Fixed."
    results = api_client.get(f"{base}/results/").json()
    assert results["win_rates"]["overall"]["wins"] == 1 and results["votes"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_pairwise_judge_job_compares_every_pair_and_the_results_rank_the_judge_modes(settings, tmp_path):
    from apps.jobs.runner import job_execute
    from apps.modelhub.models import ModelVersion
    from tests.factories import ProjectFactory

    settings.MODEL_PROFILE, settings.MODELS_DIR = "tiny", tmp_path / "models"
    project = ProjectFactory()
    review, _, _ = review_world(project, frames=3)
    reviewer = _member(project, Role.REVIEWER)
    for frame, prefer in zip(review.frames.order_by("position"), ["candidate", "baseline", "same"], strict=True):
        services.vote_record(
            frame=frame, reviewer=reviewer, choices={"overall": _shown(review, reviewer, frame, prefer)}
        )
    judge = ModelVersion.objects.get(project=project, role="detector", is_default=True)
    judge.settings = {"constrained": True, "max_new_tokens": 96}  # a random toy answers in its schema
    judge.save()
    job = services.pairwise_judge_start(review=review, judge=judge, created_by=None, enqueue=False)
    job_execute(job.id)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.result["frames"] == 3 and job.result["ok"] == 3
    again = services.pairwise_judge_start(review=review, judge=judge, created_by=None, enqueue=False)
    job_execute(again.id)  # every frame judged already: nothing asked twice
    assert review.frames.get(position=0).pairwise_judgements.count() == 1

    results = selectors.review_results(review=review)
    (pairwise,) = results["pairwise"]
    assert pairwise["judge"] == judge.name and pairwise["statuses"]["ok"] == 3
    overall = pairwise["fields"][-1]["agreement"]
    judged = {frame.id: frame.pairwise_judgements.get().preferences["overall"] for frame in review.frames.all()}
    people = [1, -1, 0]
    machine = [judged[frame.id] for frame in review.frames.order_by("position")]
    assert overall == agreement(people, machine)
    assert [mode["mode"] for mode in results["modes"]] == [f"pairwise, both orders ({judge.name})"]
    from django.test import Client

    client = Client()
    client.force_login(reviewer)
    page = unescape(client.get(f"/projects/{project.id}/reviews/{review.id}/results/").content.decode())
    assert f"pairwise, both orders ({judge.name})" in page and "3 pairs answered" in page


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_each_keep_one_vote_per_frame_and_every_correction(role_groups):
    import threading

    from django.test import Client

    from tests.factories import ProjectFactory

    project = ProjectFactory()
    review, _, _ = review_world(project, frames=6)
    reviewers = [_member(project, Role.REVIEWER) for _ in range(3)]
    url = f"/projects/{project.id}/reviews/{review.id}/frames"
    statuses: list[int] = []

    def work(user, tab: int):
        client = Client()
        client.force_login(user)
        for frame in review.frames.order_by("position"):
            choice = _shown(review, user, frame, "candidate" if (frame.position + tab) % 2 else "baseline")
            statuses.append(client.post(f"{url}/{frame.position}/vote/", {"choice_overall": choice}).status_code)
        text = f"Corrected by {user.username} in tab {tab}."
        statuses.append(client.post(f"{url}/0/correct/", {"side": "A", "field": "scene", "value": text}).status_code)

    # Every reviewer in two tabs at once: six writers on the same frames and the same captions.
    threads = [threading.Thread(target=work, args=(user, tab)) for user in reviewers for tab in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses and set(statuses) == {302}
    assert ReviewVote.objects.count() == 3 * 6  # one per reviewer and frame: a second tab replaced the first
    for user in reviewers:
        assert ReviewVote.objects.filter(reviewer=user).values("frame").distinct().count() == 6
    numbers = sorted(CaptionRevision.objects.values_list("caption_id", "number"))
    assert len(numbers) == len(set(numbers)) == 6  # six corrections, none lost, numbered without gaps per caption
    for caption_id in {c for c, _ in numbers}:
        mine = [n for c, n in numbers if c == caption_id]
        assert mine == list(range(1, len(mine) + 1))


def test_open_mode_names_the_pipelines_shows_the_judge_and_every_pipeline_and_takes_no_vote(project, reviewer, client):
    from apps.captioning.models import Caption, CaptionRun
    from apps.captioning.services import run_frames_set

    _, baseline, candidate = review_world(project, frames=3)
    third = CaptionRun.objects.create(project=project, model_version=baseline.model_version, pipeline="no_detection")
    run_frames_set(run=third, asset_ids=baseline.frame_ids())
    for caption in Caption.objects.filter(run=candidate):
        Caption.objects.create(
            run=third, asset_id=caption.asset_id, fields={**caption.fields, "scene": "Everyone is here."},
            model_version_label="x",
        )  # fmt: skip
    review = services.review_create(
        baseline=baseline, candidate=candidate, created_by=None, labels=("base pipeline", "tuned pipeline"),
        context=[(third, "no detection")],
    )  # fmt: skip
    review.frames.update(judge_baseline={"scene": 3}, judge_candidate={"scene": 9}, judge_difference=6.0)
    client.force_login(reviewer)
    url = f"/projects/{project.id}/reviews/{review.id}/"
    blind = unescape(client.get(url).content.decode())
    assert "Everyone is here." not in blind and 'title="judge score"' not in blind and 'id="vote-form"' in blind
    opened = unescape(client.get(f"{url}?mode=open").content.decode())
    assert "tuned pipeline" in opened and "base pipeline" in opened and "no detection" in opened
    assert "Everyone is here." in opened and 'title="judge score">9<' in opened
    assert 'id="vote-form"' not in opened and "votes are cast in blind mode" in opened
    # The judge-difference filter reads the same precomputed column.
    assert "No frame matches" in client.get(f"{url}?judge=7").content.decode()
    assert "Frame 1 of 3" in client.get(f"{url}?judge=6").content.decode()
