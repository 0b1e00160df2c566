"""Issue #14 acceptance 1: a reviewer walks frames with the keyboard in Debian's chromium, votes in
blind mode, corrects one field and sees the tallies move — and all of it is still there after a
reload, because it is in the database."""

import pytest
from playwright.sync_api import expect, sync_playwright

from apps.accounts.services import user_create
from apps.core.permissions import Role
from apps.review.models import CaptionRevision, ReviewVote
from tests.apps.review.world import review_world
from tests.factories import ProjectFactory

pytestmark = pytest.mark.e2e
PASSWORD = "r3viewer-pass-x"
SCREENSHOT = "/tmp/vivecaption-e2e-review.png"


@pytest.fixture
def world(role_groups):
    project = ProjectFactory(name="Review in a browser")
    reviewer = user_create(username="rita", password=PASSWORD, role=Role.REVIEWER)
    project.memberships.create(user=reviewer)
    review, _, _ = review_world(project, frames=6)
    return project, review, reviewer


def test_a_reviewer_walks_votes_and_corrects_with_the_keyboard(chromium_path, live_server, world):
    project, review, reviewer = world
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("input[name=username]", "rita")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{live_server.url}/projects/")
            page.goto(f"{live_server.url}/projects/{project.id}/reviews/{review.id}/")
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
            page.screenshot(path=SCREENSHOT, full_page=True)
        finally:
            browser.close()

    votes = list(ReviewVote.objects.filter(reviewer=reviewer).order_by("frame__position"))
    assert [vote.frame.position for vote in votes] == [0, 1, 2, 3, 4]
    assert all(
        vote.choices["scene"] == "same" and vote.choices["overall"] in ("candidate", "baseline") for vote in votes
    )
    revision = CaptionRevision.objects.get()
    assert revision.fields["background"] == "a stormy beach at dusk" and revision.author == reviewer
