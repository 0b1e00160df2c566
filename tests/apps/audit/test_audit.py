"""The audit log: every launch, cancel, download, correction, member and role change is an entry
naming who, when and on what, written by the action itself; entries cannot be changed; leads read
them, others cannot."""

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.test import Client

from apps.accounts.services import user_set_role
from apps.audit.models import AuditAction, AuditEntry, AuditEntryImmutable
from apps.core.permissions import Role
from apps.exports.models import Export
from apps.jobs.services import job_cancel, job_create
from apps.projects.services import membership_add, membership_remove
from apps.review.services import caption_correct
from tests.apps.review.world import review_world
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _entries(project=None, **filters):
    entries = AuditEntry.objects.filter(**filters)
    return list(entries.filter(project=project) if project else entries)


def test_a_launch_and_a_cancel_name_the_lead_the_job_and_the_project(project, lead, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = job_create(kind="smoke", project=project, created_by=lead, params={"steps": 3})
        job_create(kind="smoke", project=project, created_by=None)  # the system's: not a person's act
        job_create(kind="smoke", project=project, created_by=lead, parent=job)  # a stage: part of the launch
    job_cancel(job=job, cancelled_by=lead)
    launched, cancelled = (
        _entries(project, action=AuditAction.JOB_LAUNCHED),
        _entries(project, action=AuditAction.JOB_CANCELLED),
    )
    assert [(e.actor, e.actor_name, e.target) for e in launched] == [(lead, lead.username, f"job #{job.id}")]
    assert launched[0].detail == {"kind": "smoke", "params": job.params} and launched[0].project_name == project.name
    assert [(e.actor, e.target) for e in cancelled] == [(lead, f"job #{job.id}")]
    assert "before it started" in cancelled[0].summary


def test_an_action_rolled_back_leaves_no_entry(project, lead):
    with pytest.raises(RuntimeError), transaction.atomic():
        job_create(kind="smoke", project=project, created_by=lead, enqueue=False)
        raise RuntimeError("the request failed")
    assert not AuditEntry.objects.filter(action=AuditAction.JOB_LAUNCHED).exists()


def test_a_second_cancel_of_a_job_already_stopping_is_not_logged_again(
    project, lead, django_capture_on_commit_callbacks
):
    from apps.jobs.models import Job, JobStatus

    with django_capture_on_commit_callbacks(execute=False):
        job = job_create(kind="smoke", project=project, created_by=lead)
    Job.objects.filter(id=job.id).update(status=JobStatus.RUNNING)
    job_cancel(job=job, cancelled_by=lead)
    job_cancel(job=job, cancelled_by=lead)  # still running: the worker has not reached its next step
    (entry,) = _entries(project, action=AuditAction.JOB_CANCELLED)
    assert entry.summary.endswith("while it ran")


def test_a_launch_with_long_parameters_keeps_their_shape_not_every_value(project, lead, monkeypatch):
    from apps.jobs import services

    long = {"files": [{"key": f"staging/x/{n:05d}.upload", "name": f"clip-{n}.mp4"} for n in range(200)], "every": 1}
    assert services._params_shown(long) == {"files": "200 items", "every": 1}
    assert services._params_shown({"steps": 3}) == {"steps": 3}


def test_members_added_and_removed(project, lead):
    newcomer = UserFactory(username="newcomer")
    membership_add(project=project, username="newcomer", added_by=lead)
    membership_add(project=project, username="newcomer", added_by=lead)  # already in: nothing happened
    membership_remove(project=project, user=newcomer, removed_by=lead)
    entries = _entries(project, action__in=[AuditAction.MEMBER_ADDED, AuditAction.MEMBER_REMOVED])
    assert [(e.action, e.actor, e.target) for e in reversed(entries)] == [
        (AuditAction.MEMBER_ADDED, lead, "user newcomer"),
        (AuditAction.MEMBER_REMOVED, lead, "user newcomer"),
    ]


def test_role_changes_are_logged_however_they_are_made(client, role_groups):
    admin = UserFactory(username="boss", is_staff=True, is_superuser=True)
    ann = UserFactory(username="ann", role=Role.ANNOTATOR)
    before = AuditEntry.objects.count()
    user_set_role(user=ann, role=Role.REVIEWER)  # a service call (a shell, seed_demo): no person known
    changes = AuditEntry.objects.filter(action=AuditAction.ROLE_CHANGED).order_by("id")[before:]
    assert [(e.actor_name, e.summary) for e in changes] == [
        ("system", "annotator role taken from ann"),
        ("system", "reviewer role given to ann"),
    ]  # the roles ann did not hold are not said to be taken
    client.force_login(admin)  # Django's admin pages: the signed-in person is named
    from django.contrib.auth.models import Group

    lead_group = Group.objects.get(name="lead")
    response = client.post(
        f"/admin/auth/user/{ann.id}/change/",
        {"username": "ann", "groups": [lead_group.id], "is_active": "on", "date_joined_0": "2026-12-01",
         "date_joined_1": "10:00:00", "initial-date_joined_0": "2026-12-01", "initial-date_joined_1": "10:00:00"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    last = AuditEntry.objects.filter(action=AuditAction.ROLE_CHANGED).order_by("-id")[:2]
    assert {(e.actor, e.summary) for e in last} == {
        (admin, "reviewer role taken from ann"),
        (admin, "lead role given to ann"),
    }
    before = AuditEntry.objects.count()
    user_set_role(user=ann, role=Role.LEAD)  # the role ann has: no change, nothing logged
    assert AuditEntry.objects.count() == before


def test_role_changes_from_the_groups_side_and_clears_are_logged(role_groups):
    from django.contrib.auth.models import Group

    ann, bob = UserFactory(username="ann2", role=Role.ANNOTATOR), UserFactory(username="bob2")
    reviewers = Group.objects.get(name="reviewer")
    before = AuditEntry.objects.count()
    reviewers.user_set.add(bob)
    reviewers.user_set.remove(bob, ann)  # ann never held it: only bob loses it
    ann.groups.clear()
    summaries = list(AuditEntry.objects.order_by("id")[before:].values_list("summary", flat=True))
    assert summaries == [
        "reviewer role given to bob2",
        "reviewer role taken from bob2",
        "annotator role taken from ann2",
    ]


def test_a_correction_and_a_download_are_logged(project, lead, reviewer, tmp_path):
    review, _, candidate = review_world(project, frames=2)
    caption = candidate.captions.order_by("id").first()
    revision = caption_correct(caption=caption, fields={"scene": "A corrected scene."}, author=reviewer, review=review)
    (entry,) = _entries(project, action=AuditAction.CAPTION_CORRECTED)
    assert (entry.actor, entry.target) == (reviewer, f"caption #{caption.id}")
    assert entry.detail == {"revision": revision.number, "review_id": review.id, "fields": ["scene"]}

    export = Export.objects.create(project=project, source="best", format="jsonl", template="{scene}", frames=2)
    export.archive.save("export.zip", ContentFile(b"PK\x05\x06" + bytes(18)))
    client = Client()
    client.force_login(lead)
    response = client.get(f"/projects/{project.id}/exports/{export.id}/download/")
    assert response.status_code == 200
    (download,) = _entries(project, action=AuditAction.EXPORT_DOWNLOADED)
    assert (download.actor, download.target) == (lead, f"export #{export.id}")
    assert download.detail == {"format": "jsonl", "source": "best", "frames": 2}


def test_entries_cannot_be_changed_or_deleted_from_the_app(project, lead):
    entry = AuditEntry.objects.create(action=AuditAction.JOB_LAUNCHED, actor_name="x", target="job #1", summary="s")
    entry.summary = "rewritten"
    with pytest.raises(AuditEntryImmutable):
        entry.save()
    with pytest.raises(AuditEntryImmutable):
        entry.delete()
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.filter(id=entry.id).update(summary="rewritten")
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(id=entry.id).summary == "s"


def test_the_admin_pages_show_entries_and_offer_no_change(project):
    admin = UserFactory(username="boss", is_staff=True, is_superuser=True)
    entry = AuditEntry.objects.create(action=AuditAction.JOB_LAUNCHED, actor_name="x", target="job #1", summary="s")
    client = Client()
    client.force_login(admin)
    assert client.get("/admin/audit/auditentry/").status_code == 200
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    assert client.post(f"/admin/audit/auditentry/{entry.id}/delete/", {"post": "yes"}).status_code == 403
    change = client.post(f"/admin/audit/auditentry/{entry.id}/change/", {"summary": "rewritten"})
    assert change.status_code == 403 and AuditEntry.objects.get(id=entry.id).summary == "s"


def test_leads_read_their_projects_log_page_by_page(
    client, project, lead, django_capture_on_commit_callbacks, monkeypatch
):
    from apps.audit import selectors

    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    with django_capture_on_commit_callbacks(execute=False):
        jobs = [job_create(kind="smoke", project=project, created_by=lead) for _ in range(3)]
    client.force_login(lead)
    first = client.get(f"/projects/{project.id}/audit/").content.decode()
    assert f"job #{jobs[2].id}" in first and f"job #{jobs[1].id}" in first and f"job #{jobs[0].id}" not in first
    assert "Older entries" in first and "launched a job" in first and lead.username in first
    second_newest = AuditEntry.objects.filter(project=project).order_by("-id")[1]
    older = client.get(f"/projects/{project.id}/audit/?after={second_newest.id}")
    assert f"job #{jobs[0].id}" in older.content.decode() and "Older entries" not in older.content.decode()
    assert "Audit log" in client.get(f"/projects/{project.id}/").content.decode()


def test_others_cannot_read_the_log(client, project, annotator, reviewer, other_project):
    for user in (annotator, reviewer):
        client.force_login(user)
        assert client.get(f"/projects/{project.id}/audit/").status_code == 403
        assert client.get("/audit/accounts/").status_code == 403
        assert "Audit log" not in client.get(f"/projects/{project.id}/").content.decode()
    outsider = UserFactory(role=Role.LEAD)
    MembershipFactory(project=other_project, user=outsider)
    client.force_login(outsider)
    assert client.get(f"/projects/{project.id}/audit/").status_code == 404
