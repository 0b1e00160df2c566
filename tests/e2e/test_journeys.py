"""Issue #17 acceptance 1: each user's journey in Debian's chromium at 1366×900, against the live
app, a real Label Studio and real Celery workers. Screenshots of the main pages go to
test-output/e2e/; any JavaScript or console error on an app page fails the journey (conftest)."""

import random
import re
import time
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from apps.accounts.services import user_create
from apps.core.permissions import Role
from apps.jobs.models import Job
from apps.labeling.browser import LabelStudioBrowser
from apps.labeling.label_config import choices_result
from apps.labeling.models import GoldLabel, LabelingProject, LabelingStatus
from apps.labeling.services import labeling_project_start
from apps.projects.models import Project
from apps.projects.services import reference_image_add
from apps.training.models import TrainingRun, TrainingStep
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
    expect(page.locator("main")).to_contain_text("Sign in to Label Studio as anna@example.com")
    expect(page.locator("main")).to_contain_text("anna")  # in the progress per annotator
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


def _footage(folder: Path, frames: int = 24) -> list[Path]:
    """Frames of three kinds of shot (sky, forest, room), told apart by colour and shape, so that
    CLIP, UMAP and HDBSCAN have something to find."""
    rng = random.Random(5)
    paths = []
    for index in range(frames):
        kind = index % 3
        base = [(70, 130, 230), (40, 140, 60), (150, 90, 60)][kind]
        image = Image.new("RGB", (160, 90), tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in base))
        draw = ImageDraw.Draw(image)
        x, y = rng.randint(10, 110), rng.randint(10, 50)
        [draw.ellipse, draw.rectangle, draw.line][kind]((x, y, x + 40, y + 30), fill=(250, 240, 200), width=4)
        path = folder / f"shot-{index:02d}.png"
        image.save(path)
        paths.append(path)
    return paths


def _succeeded(page, timeout_s: float = 240) -> None:
    """On a job's page: wait until its job has succeeded (the page polls and reloads at the end)."""
    badge = page.locator(".progress-wrap .badge").first
    expect(badge).to_have_text(re.compile("Succeeded|Failed|Cancelled"), timeout=timeout_s * 1000)
    expect(badge).to_have_text("Succeeded")


def test_the_lead_builds_the_gold_set_fine_tunes_reads_the_report_and_exports(
    journey, ls_settings, role_groups, clean_queue, workers, tmp_path
):
    user_create(username="lena", password=PASSWORD, role=Role.LEAD, email="lena@example.com")
    annotator = user_create(username="ann", password=PASSWORD, role=Role.ANNOTATOR, email="ann@example.com")
    # One worker for both queues (the evaluation waits for its stages without holding a worker).
    workers("journey-all", queue="cpu,gpu", extra_env=_label_studio_env(ls_settings))
    page = journey.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "Freeze this gold set?"
    journey.log_in(page, "lena", PASSWORD)
    app = journey.app_url

    # A project, its roster and its footage.
    page.get_by_role("link", name="New project").click()
    page.fill("input[name=name]", "Lead's journey")
    page.fill("textarea[name=description]", "Three kinds of shot, two characters.")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1")).to_have_text("Lead's journey")
    project = Project.objects.get(name="Lead's journey")
    project.memberships.create(user=annotator)
    expect(page.locator("#pipeline")).to_contain_text("Next: Upload footage")
    for name in ("Ellie", "Victor"):
        page.goto(f"{app}/projects/{project.id}/characters/new/")
        page.fill("input[name=name]", name)
        page.fill("textarea[name=description]", f"{name}, one of the two.")
        page.get_by_role("button", name="Save").click()
    page.goto(f"{app}/projects/{project.id}/")
    page.locator("#pipeline").get_by_role("link", name="Upload footage").last.click()
    page.set_input_files("input[type=file]", [str(path) for path in _footage(tmp_path)])
    page.get_by_role("button", name="Upload and ingest").click()
    _succeeded(page)
    journey.shoot(page, "ingest-job")

    # The gold set: embed, cluster, sample, freeze.
    page.goto(f"{app}/projects/{project.id}/curation/")
    page.get_by_role("button", name="Embed new frames").click()
    _succeeded(page)
    page.goto(f"{app}/projects/{project.id}/curation/")
    page.fill("input[name=n_neighbors]", "5")
    page.fill("input[name=min_cluster_size]", "2")
    page.get_by_role("button", name="Cluster").click()
    _succeeded(page)
    page.get_by_role("link", name=re.compile("clustering", re.I)).last.click()
    # The click only starts the navigation: wait for the clustering's page before reading its plot.
    page.wait_for_url(re.compile(r"/curation/clusterings/\d+/$"))
    # Every frame a dot, once the page has fetched the points (binary arrays) and drawn them.
    drawn = "((document.getElementById('projection') || {}).data || []).slice(0, 2).reduce((n, t) => n + t.x.length, 0)"
    page.wait_for_function(f"{drawn} === 24")  # clustered + noise; the third trace rings the gold picks
    journey.shoot(page, "projection")
    page.fill("input[name=target_size]", "12")
    page.get_by_role("button", name="Sample").click()
    _succeeded(page)
    page.get_by_role("link", name=re.compile("gold set", re.I)).last.click()
    page.get_by_role("button", name="Freeze").click()
    expect(page.locator("body")).to_contain_text("is frozen")
    journey.shoot(page, "gold-set")

    # The untrained detector's in-context answers on the gold set, to pre-fill the labelling.
    page.goto(f"{app}/projects/{project.id}/runs/")
    page.get_by_role("button", name="Detect characters").click()
    _succeeded(page)

    # Labelling: the lead sends it to Label Studio; an annotator answers there (through its API,
    # as the annotator's journey does in the browser); the webhooks bring the answers back.
    page.goto(f"{app}/projects/{project.id}/labeling/")
    page.select_option("select[name=detection_run]", index=1)
    page.get_by_role("button", name="Create the Label Studio project").click()
    labeling_project = LabelingProject.objects.get(project=project)
    _wait_until(
        lambda: LabelingProject.objects.get(id=labeling_project.id).status == LabelingStatus.READY, 120, "the push"
    )
    in_label_studio(annotator, LS_PASSWORD)
    tasks = list(labeling_project.tasks.order_by("id"))
    with LabelStudioBrowser(ls_settings.LABEL_STUDIO_URL) as browser:
        browser.log_in(annotator.email, LS_PASSWORD)
        for index, task in enumerate(tasks):
            browser.annotate(
                task.ls_task_id, choices_result([["Ellie"], ["Victor"], ["Ellie", "Victor"], []][index % 4])
            )
    _wait_until(
        lambda: GoldLabel.objects.filter(labeling_project=labeling_project).count() == len(tasks), 120, "labels"
    )

    # Fine-tuning: launched from its page; the curves grow while it trains.
    page.goto(f"{app}/projects/{project.id}/training/")
    page.fill("input[name=epochs]", "24")  # enough steps to be seen growing at the page's 2 s poll
    page.fill("input[name=batch_size]", "1")
    page.get_by_role("button", name="Train").click()
    run = TrainingRun.objects.get(project=project)
    points = []  # the loss chart's points as the page shows them, every half second
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not Job.objects.get(id=run.job_id).is_finished:
        try:
            count = page.evaluate("((document.getElementById('loss-chart') || {}).data || [{x: []}])[0].x.length")
        except PlaywrightError:  # the page reloads itself once the run ends
            continue
        if not points or count != points[-1]:
            points.append(count)
        time.sleep(0.5)
    total = TrainingStep.objects.filter(run=run).count()
    assert total > 0 and len([n for n in points if 0 < n < total]) >= 2, (
        points,
        run.job_id,
    )  # seen growing, more than once
    expect(page.locator("#before-after")).to_contain_text("Sample-F1", timeout=30_000)
    journey.shoot(page, "training")

    # The evaluation: an eval set outside the gold set, the comparison, the report.
    page.goto(f"{app}/projects/{project.id}/evaluation/")
    page.fill("input[name=size]", "8")
    page.get_by_role("button", name="Sample frames outside every gold set").click()
    judge = page.locator("select[name=judge] option", has_text="qwen").first.get_attribute("value")
    page.select_option("select[name=judge]", judge)
    page.get_by_role("button", name="Run the comparison").click()
    expect(page.locator("h1")).to_contain_text("Comparison")
    expect(page.locator("#score-bars")).to_be_visible(timeout=300_000)  # the report, once the job is done
    expect(page.locator("body")).to_contain_text("CLIPScore")
    journey.shoot(page, "report")

    # The export: the best caption of every frame, downloaded.
    page.goto(f"{app}/projects/{project.id}/exports/")
    page.locator("#export-form").get_by_role("button", name="Export").click()
    download_link = page.get_by_role("link", name="Download the archive")
    expect(download_link).to_be_visible(timeout=120_000)
    with page.expect_download() as download:
        download_link.click()
    archive = Path(download.value.path())
    assert archive.stat().st_size > 0 and zipfile.ZipFile(archive).namelist()
    journey.shoot(page, "export")

    page.goto(f"{app}/projects/{project.id}/")
    stages = page.locator("#pipeline .stage")
    expect(stages).to_have_count(10)
    journey.shoot(page, "pipeline")
    for key in ("footage", "embeddings", "clustering", "gold_set", "fine_tuning", "evaluation", "export"):
        expect(page.locator(f'#pipeline .stage[data-stage="{key}"] .badge')).to_have_text("Done")
