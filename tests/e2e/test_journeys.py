"""Issue #17 acceptance 1: each user's journey in Debian's chromium at 1366×900, against the live
app, a real Label Studio and real Celery workers. Screenshots of the main pages go to
test-output/e2e/; any JavaScript or console error on an app page fails the journey (conftest)."""

import re
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from apps.accounts.services import user_create
from apps.core.permissions import Role
from apps.labeling.models import GoldLabel, LabelingProject, LabelingStatus
from apps.labeling.services import labeling_project_start
from apps.projects.services import reference_image_add
from tests.apps.labeling.world import in_label_studio, labeling_world
from tests.factories import CharacterFactory, png_bytes

pytestmark = pytest.mark.e2e
PASSWORD = "j0urney-pass-x"
LS_PASSWORD = "j0urney-ls-pass-x"


def _wait_until(predicate, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def _label_studio_env(settings) -> dict:
    """What a worker needs to talk to the test's Label Studio (it reads its settings from the environment)."""
    return {
        "LABEL_STUDIO_URL": settings.LABEL_STUDIO_URL,
        "LABEL_STUDIO_TOKEN": settings.LABEL_STUDIO_TOKEN,
        "LABELING_APP_URL": settings.LABELING_APP_URL,
    }


def test_the_annotator_finds_the_queue_labels_a_frame_in_label_studio_and_sees_it_counted(
    journey, ls_settings, role_groups, clean_queue, workers
):
    world = labeling_world(frames=4, name="Annotator's journey")
    # A roster of a dozen, each with a reference image: all of them must fit beside the frame.
    for index in range(9):
        character = CharacterFactory(project=world.project, name=f"Extra {index + 1}", description="a passer-by")
        reference_image_add(character=character, upload=SimpleUploadedFile("r.png", png_bytes(), "image/png"))
    anna = user_create(username="anna", password=PASSWORD, role=Role.ANNOTATOR, email="anna@example.com")
    world.project.memberships.create(user=anna)
    in_label_studio(anna, LS_PASSWORD)  # made by the app, as a lead does from the labelling page
    workers("journey-cpu", queue="cpu", extra_env=_label_studio_env(ls_settings))  # the push, the webhooks' syncs
    labeling_project = labeling_project_start(
        gold_set=world.gold_set, detection_run=None, control_fraction=0.0, created_by=None
    )
    _wait_until(
        lambda: LabelingProject.objects.get(id=labeling_project.id).status == LabelingStatus.READY, 120, "the push"
    )

    page = journey.new_page()
    journey.log_in(page, "anna", PASSWORD)
    page.get_by_role("link", name="Annotator's journey").click()
    panel = page.locator("#pipeline")
    expect(panel).to_contain_text("Your next step: labelling")
    expect(panel).to_contain_text("sign in there with anna@example.com")
    expect(panel).to_contain_text("you labelled 0, 4 left for you")
    journey.shoot(page, "project-page")

    with page.expect_popup() as popup:
        panel.get_by_role("link", name="Open my queue in Label Studio").click()
    label_studio = journey.watch(popup.value)
    label_studio.fill("input[name=email]", "anna@example.com")
    label_studio.fill("input[name=password]", LS_PASSWORD)
    label_studio.click("button[type=submit]")
    choices = label_studio.locator(".ant-checkbox-wrapper")
    expect(choices).to_have_count(12, timeout=60_000)
    expect(label_studio.locator("img").first).to_be_visible()
    journey.shoot(label_studio, "label-studio", full_page=False)
    # At 1366×900 every choice is on screen beside the frame: nothing to scroll to.
    viewport = label_studio.viewport_size
    for index in range(12):
        box = choices.nth(index).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (index, box)

    label_studio.get_by_text("Ellie", exact=True).click()
    label_studio.get_by_role("button", name="Submit current annotation").click()
    _wait_until(lambda: GoldLabel.objects.filter(annotator=anna).exists(), 60, "the label to come back")
    label = GoldLabel.objects.get(annotator=anna)
    assert label.names == ["Ellie"]

    page.reload()  # back in the app: the answer counts
    expect(page.locator("#pipeline")).to_contain_text("you labelled 1, 3 left for you")
    page.locator("#pipeline").get_by_role("link", name=re.compile("Labelling of Gold set")).click()
    expect(page.locator("body")).to_contain_text("anna")
    journey.shoot(page, "labelling-page")


def test_a_console_error_on_an_app_page_is_caught_and_one_on_label_studio_is_not(journey, label_studio):
    """The check every journey ends with can fail: an error logged by an app page is recorded."""
    page = journey.new_page()
    page.goto(f"{journey.app_url}/accounts/login/")
    page.evaluate("console.error('boom from the app')")
    page.evaluate("setTimeout(() => { throw new Error('thrown by the app') }, 0)")
    page.wait_for_timeout(200)
    outside = journey.new_page()
    outside.goto(f"{label_studio.url}/user/login/")
    outside.evaluate("console.error('boom from Label Studio')")
    outside.wait_for_timeout(200)
    assert len(journey.errors) == 2, journey.errors
    assert "boom from the app" in journey.errors[0] and "thrown by the app" in journey.errors[1]
    journey.errors.clear()  # seen: the fixture's own check would fail the test on them
