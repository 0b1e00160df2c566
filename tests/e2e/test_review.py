"""Issue #14 acceptance 1, and the reviewer's journey of issue #17: from the project page a reviewer
finds their review, walks its frames with the keyboard in Debian's chromium, votes in blind mode,
corrects one field and sees the tallies move — and all of it is still there after a reload,
because it is in the database."""

import pytest
from playwright.sync_api import expect

from apps.accounts.services import user_create
from apps.core.permissions import Role
from apps.review.models import CaptionRevision, ReviewVote
from tests.apps.review.world import review_world
from tests.factories import ProjectFactory

pytestmark = pytest.mark.e2e
PASSWORD = "r3viewer-pass-x"


@pytest.fixture
def world(role_groups):
    project = ProjectFactory(name="Review in a browser")
    reviewer = user_create(username="rita", password=PASSWORD, role=Role.REVIEWER)
    project.memberships.create(user=reviewer)
    review, _, _ = review_world(project, frames=6)
    return project, review, reviewer


def test_the_reviewer_finds_the_review_walks_votes_and_corrects_with_the_keyboard(journey, world):
    project, review, reviewer = world
    page = journey.new_page()
    journey.log_in(page, "rita", PASSWORD)
    page.get_by_role("link", name=project.name).click()
    panel = page.locator("#pipeline")
    expect(panel).to_contain_text("Your next step: reviewing")
    expect(panel).to_contain_text(f"{review.name} · you voted on 0 of 6 frames")
    panel.get_by_role("link", name="Start reviewing").click()
    counter = page.locator(".review-image strong").first
    expect(counter).to_have_text("Frame 1 of 6")

    page.keyboard.press("ArrowRight")  # walk forward and back without voting
    expect(counter).to_have_text("Frame 2 of 6")
    page.keyboard.press("ArrowLeft")
    expect(counter).to_have_text("Frame 1 of 6")

    for done in range(1, 6):  # five frames: a field and overall from the keys, Enter saves
        page.keyboard.press("1")
        page.keyboard.press("s")  # scene: the same
        page.keyboard.press("5")
        page.keyboard.press("a" if done % 2 else "b")  # overall: A, then B, …
        page.keyboard.press("Enter")
        expect(counter).to_have_text(f"Frame {done + 1} of 6")
        expect(page.locator("#my-votes")).to_have_text(str(done))
    tallies = [int(page.locator(f"#tally-{kind}").inner_text()) for kind in ("candidate", "same", "baseline")]
    assert sum(tallies) == 5 and tallies[1] == 0

    page.keyboard.press("2")  # background of caption A, corrected in place
    page.keyboard.press("e")
    area = page.locator('details.correct[data-side="A"][data-field="background"] textarea')
    expect(area).to_be_focused()
    area.fill("a stormy beach at dusk")
    page.locator('details.correct[data-side="A"][data-field="background"] button').click()
    expect(page.locator(".review-table")).to_contain_text("a stormy beach at dusk")
    expect(page.locator(".review-table")).to_contain_text("revision 1")

    page.reload()  # everything above is stored, not kept in the page
    expect(counter).to_have_text("Frame 6 of 6")  # where the reviewer stopped
    expect(page.locator(".review-table")).to_contain_text("a stormy beach at dusk")
    expect(page.locator("#my-votes")).to_have_text("5")
    page.keyboard.press("ArrowLeft")
    expect(counter).to_have_text("Frame 5 of 6")
    expect(page.locator('input[name="choice_overall"]:checked')).to_have_value("A")  # the fifth vote: A
    journey.shoot(page, "review")
    page.goto(f"{journey.app_url}/projects/{project.id}/")
    expect(page.locator("#pipeline")).to_contain_text(f"{review.name} · you voted on 5 of 6 frames")

    votes = list(ReviewVote.objects.filter(reviewer=reviewer).order_by("frame__position"))
    assert [vote.frame.position for vote in votes] == [0, 1, 2, 3, 4]
    assert all(
        vote.choices["scene"] == "same" and vote.choices["overall"] in ("candidate", "baseline") for vote in votes
    )
    revision = CaptionRevision.objects.get()
    assert revision.fields["background"] == "a stormy beach at dusk" and revision.author == reviewer
