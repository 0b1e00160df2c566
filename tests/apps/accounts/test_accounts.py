from django.contrib.auth.models import Group, User
from django.core.management import call_command

from apps.accounts.services import user_create
from apps.core.permissions import POLICY, Action, Role, can


def test_role_groups_come_from_the_data_migration(db):
    groups = {group.name: {p.codename for p in group.permissions.all()} for group in Group.objects.all()}
    assert set(groups) == {"lead", "annotator", "reviewer"}
    assert {"add_project", "change_character", "add_job"} <= groups["lead"]
    assert "add_job" not in groups["annotator"] and "change_character" not in groups["reviewer"]


def test_policy_table_covers_every_action_and_only_leads_write():
    assert set(POLICY) == set(Action)
    for action in (Action.CREATE_PROJECT, Action.EDIT_ROSTER, Action.LAUNCH_JOB, Action.CANCEL_JOB):
        assert POLICY[action] == {Role.LEAD}


def test_user_create_gives_exactly_one_role(db):
    user = user_create(username="ann", password="s3cret-pass-x", role=Role.ANNOTATOR)
    assert [g.name for g in user.groups.all()] == ["annotator"]
    assert can(user, Action.VIEW_PROJECT) and not can(user, Action.LAUNCH_JOB)


def test_login_page_and_login(client, db):
    user_create(username="lea", password="s3cret-pass-x", role=Role.LEAD)
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b"Log in" in page.content
    response = client.post("/accounts/login/", {"username": "lea", "password": "s3cret-pass-x"})
    assert response.status_code == 302 and response["Location"] == "/projects/"


def test_api_token_auth(api_client, db):
    user_create(username="lea", password="s3cret-pass-x", role=Role.LEAD)
    assert api_client.post("/api/auth/token/", {"username": "lea", "password": "nope"}).status_code == 400
    token = api_client.post("/api/auth/token/", {"username": "lea", "password": "s3cret-pass-x"}).json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = api_client.get("/api/me/").json()
    assert (me["username"], me["role"]) == ("lea", "lead")


def test_seed_demo_is_idempotent_and_prints_credentials(db, settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert first == second  # same users, same passwords, no duplicate project
    assert "lead" in first and "annotator" in first and "reviewer" in first
    from apps.projects.models import Project

    project = Project.objects.get(name="Sample project")
    assert project.characters.count() == 3 and project.memberships.count() == 4  # lead, 2 annotators, reviewer
    assert User.objects.get(username="annotator2").email == "annotator2@example.com"  # Label Studio matches by e-mail


def test_token_endpoint_is_rate_limited(api_client, db, settings):
    from django.core.cache import cache

    cache.clear()
    codes = [api_client.post("/api/auth/token/", {"username": "x", "password": "y"}).status_code for _ in range(22)]
    assert codes[:20] == [400] * 20 and codes[-1] == 429
    cache.clear()


def test_a_member_without_a_role_sees_nothing(client, db):
    from tests.factories import JobFactory, MembershipFactory, ProjectFactory, UserFactory

    project = ProjectFactory()
    user = UserFactory()  # a member, but in no role group (e.g. removed by an admin)
    MembershipFactory(project=project, user=user)
    job = JobFactory(project=project)
    client.force_login(user)
    assert client.get(f"/projects/{project.id}/assets/").status_code == 404
    assert client.get(f"/jobs/{job.id}/").status_code == 404
    assert client.get(f"/api/projects/{project.id}/").status_code == 404
