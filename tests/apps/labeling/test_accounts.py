"""Sign-up is off; the app makes the labelling members' Label Studio accounts, and only their
answers count — against a real Label Studio."""

import httpx
import pytest

from apps.labeling import selectors, services
from apps.labeling.browser import LabelStudioBrowser
from apps.labeling.client import LabelStudioClient
from apps.labeling.label_config import choices_result
from apps.labeling.models import GoldLabel, LabelStudioAccount
from tests.apps.labeling.world import in_label_studio, labeling_world, labelling_member
from tests.labelstudio import Rule

pytestmark = pytest.mark.django_db(transaction=True)


def _ls_users(email: str) -> list[int]:
    return [user.id for user in LabelStudioClient().sdk.users.list() if (user.email or "").lower() == email]


def test_anonymous_sign_up_is_refused(ls_settings):
    with httpx.Client(base_url=ls_settings.LABEL_STUDIO_URL) as http:
        http.get("/user/signup/")
        response = http.post(
            "/user/signup/",
            data={
                "email": "walk-in@example.com",
                "password": "walk-in-pass-1",
                "csrfmiddlewaretoken": http.cookies.get("csrftoken", ""),
            },
            headers={"Referer": ls_settings.LABEL_STUDIO_URL + "/user/signup/"},
        )
        assert response.status_code == 403
        assert http.get("/api/current-user/whoami").status_code == 401
    assert _ls_users("walk-in@example.com") == []


def test_the_app_makes_the_accounts_and_only_their_answers_count(ls_settings, role_groups, client):
    world = labeling_world(frames=3, name="Accounts world")
    labeling_project = services.labeling_project_start(
        gold_set=world.gold_set, detection_run=None, control_fraction=0.0, created_by=None, enqueue=False
    )
    services.labeling_push(labeling_project=labeling_project)
    annotator = labelling_member(world.project, "acc-ann")
    lead = labelling_member(world.project, "acc-lead", role="lead")
    reviewer = labelling_member(world.project, "acc-rev", role="reviewer")
    squatted = labelling_member(world.project, "acc-squat")
    invite = LabelStudioClient().invite_token()
    # Someone who got hold of the invitation link signs up, once with a member's e-mail.
    with LabelStudioBrowser(ls_settings.LABEL_STUDIO_URL) as browser:
        browser.sign_up("intruder@example.com", "intruder-pass-1", invite)
    with LabelStudioBrowser(ls_settings.LABEL_STUDIO_URL) as browser:
        browser.sign_up(squatted.email, "squatter-pass-1", invite)

    outcomes = {
        o.user.username: o for o in services.labeling_member_accounts_ensure(project=world.project, created_by=lead)
    }
    assert set(outcomes) == {"acc-ann", "acc-lead", "acc-squat"}  # the reviewer does not label
    assert outcomes["acc-ann"].status == outcomes["acc-lead"].status == "created"
    assert outcomes["acc-squat"].status == "refused" and "did not make" in outcomes["acc-squat"].detail
    password = outcomes["acc-ann"].password
    assert len(password) >= 12 and not LabelStudioAccount.objects.filter(user=squatted).exists()
    mapped = LabelStudioAccount.objects.get(user=annotator)
    assert _ls_users(annotator.email) == [mapped.ls_user_id]
    # Running it again makes nothing twice.
    again = services.labeling_member_accounts_ensure(project=world.project, created_by=lead)
    assert {o.user.username: o.status for o in again} == {
        "acc-ann": "existing",
        "acc-lead": "existing",
        "acc-squat": "refused",
    }
    assert _ls_users(annotator.email) == [mapped.ls_user_id]
    in_label_studio(reviewer, "reviewer-pass-1")  # an account, but a reviewer does not label

    task = labeling_project.tasks.order_by("id").first()
    for email, secret, names in [
        (annotator.email, password, ["Ellie"]),
        (reviewer.email, "reviewer-pass-1", ["Victor"]),
        ("intruder@example.com", "intruder-pass-1", ["Victor"]),
        (squatted.email, "squatter-pass-1", ["Victor"]),
    ]:
        with LabelStudioBrowser(ls_settings.LABEL_STUDIO_URL) as browser:
            browser.log_in(email, secret)
            browser.annotate(task.ls_task_id, choices_result(names))
    services.labels_reconcile(labeling_project=labeling_project)

    assert GoldLabel.objects.filter(labeling_project=labeling_project).count() == 4  # all stored
    assert selectors.gold_label_map(labeling_project) == {task.asset_id: ["Ellie"]}
    ignored = {row.who.split(" ")[0]: row.reason for row in selectors.ignored_labels(labeling_project)}
    assert set(ignored) == {reviewer.email, "intruder@example.com", squatted.email}
    assert "acc-rev is a reviewer" in ignored[reviewer.email]
    assert "the app did not make this Label Studio account" in ignored["intruder@example.com"]
    client.force_login(lead)
    page = client.get(f"/projects/{world.project.id}/labeling/{labeling_project.id}/").content.decode()
    assert "Ignored annotations (3)" in page and "intruder@example.com" in page


def test_a_sign_up_whose_answer_was_lost_is_not_made_twice(ls_settings, role_groups, faulty_proxy):
    world = labeling_world(frames=1, name="Lost sign-up world")
    user = labelling_member(world.project, "lost-answer")
    faulty_proxy.faults.rules = [Rule("POST", r"^/user/signup/", "forward-then-drop")]
    client = LabelStudioClient(url=faulty_proxy.url, retries=2, backoff_seconds=0.05)
    outcome = services.labelstudio_account_ensure(user=user, client=client)
    assert faulty_proxy.faults.rules[0].hits == 1
    assert outcome.status == "created" and outcome.password
    assert _ls_users(user.email) == [user.labelstudio_account.ls_user_id]
    with LabelStudioBrowser(ls_settings.LABEL_STUDIO_URL) as browser:
        assert browser.log_in(user.email, outcome.password)["id"] == user.labelstudio_account.ls_user_id


def test_simulated_annotators_get_their_accounts_from_the_app(ls_settings, role_groups, monkeypatch, tmp_path):
    """The demo's stand-in annotators: accounts made through the API (no sign-up), answers counted."""
    import io
    import json

    from django.core.management import call_command

    from apps.labeling.management.commands import simulate_annotators

    world = labeling_world(frames=4, name="Simulated world")
    labeling_project = services.labeling_project_start(
        gold_set=world.gold_set, detection_run=world.detection_run, control_fraction=0.0, created_by=None, enqueue=False
    )
    services.labeling_push(labeling_project=labeling_project)
    for username in ("sim-a", "sim-b"):
        labelling_member(world.project, username)
    passwords = tmp_path / "credentials.json"
    passwords.write_text(json.dumps({"sim-a": "sim-a-pass-123", "sim-b": "sim-b-pass-123"}))
    monkeypatch.setattr(simulate_annotators, "ground_truth_names", lambda project, asset_ids: world.predicted)
    outputs = []
    for _ in range(2):  # a second run finds the accounts, and the answers, the first made
        out = io.StringIO()
        call_command(
            "simulate_annotators", str(world.project.id), "--annotator", "sim-a", "--annotator", "sim-b",
            "--passwords", str(passwords), "--overlap", "0.5", stdout=out,
        )  # fmt: skip
        outputs.append(out.getvalue())
    assert LabelStudioAccount.objects.filter(user__username__in=["sim-a", "sim-b"]).count() == 2
    client = LabelStudioClient()
    per_task = [
        [annotation.completed_by for annotation in client.annotations_of(task)]
        for task in client.tasks(project_id=labeling_project.ls_project_id)
    ]
    answers = sum(len(authors) for authors in per_task)
    assert len(per_task) == 4 and all(authors and len(authors) == len(set(authors)) for authors in per_task)
    assert f"{answers} answers submitted" in outputs[0] and "0 answers submitted" in outputs[1]
    assert outputs[1].count("answered before") == 2
    services.labels_reconcile(labeling_project=labeling_project)
    assert selectors.gold_label_map(labeling_project) == world.predicted
    assert selectors.ignored_labels(labeling_project) == []


def test_a_lead_makes_the_accounts_from_the_labelling_page(ls_settings, role_groups, client):
    world = labeling_world(frames=1, name="Accounts page world")
    member = labelling_member(world.project, "page-ann")
    lead = labelling_member(world.project, "page-lead", role="lead")
    LabelStudioAccount.objects.create(user=lead, ls_user_id=999_999, ls_email=lead.email)  # has one already
    annotator_client = type(client)()
    annotator_client.force_login(member)
    assert annotator_client.post(f"/projects/{world.project.id}/labeling/accounts/").status_code == 403
    client.force_login(lead)
    index = client.get(f"/projects/{world.project.id}/labeling/").content.decode()
    assert "Make the missing Label Studio accounts" in index and "none yet" in index
    response = client.post(f"/projects/{world.project.id}/labeling/accounts/")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    password = next(o for o in response.context["outcomes"] if o.user == member).password
    page = response.content.decode()
    assert f"<code>{password}</code>" in page and "existing" in page
    with LabelStudioBrowser(ls_settings.LABEL_STUDIO_URL) as browser:
        assert browser.log_in(member.email, password)["id"] == LabelStudioAccount.objects.get(user=member).ls_user_id
