"""Browser tests: Debian's chromium driven by Playwright, against the app on 127.0.0.1 and a real
Label Studio on 127.0.0.1 (tests/labelstudio.py). `make test` installs chromium when missing;
these tests never skip. Each page a test opens is watched: a JavaScript error or a console error
on one of the app's pages fails the test. Screenshots go to test-output/e2e/ (E2E_OUTPUT)."""

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from pytest_django.live_server_helper import LiveServer

from tests.integration.test_worker_kill import clean_queue, workers  # noqa: F401  (real workers for journeys)
from tests.labelstudio import start_label_studio, stop_label_studio

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("E2E_OUTPUT", ROOT / "test-output" / "e2e"))


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not CHROMIUM.exists():
        pytest.fail(
            f"No chromium at {CHROMIUM}: the browser tests (tests/e2e) need Debian's chromium. `make test` "
            "installs it when run as root (apt-get install -y chromium); otherwise install it, or set CHROMIUM "
            "to a chromium binary."
        )
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def live_server():
    """pytest-django's live server, on 127.0.0.1 rather than `localhost`: the host Label Studio is
    on, as in `make demo` (cookies are scoped by host, not port). pytest-django's helper still
    gives each test using it a transactional database."""
    server = LiveServer("127.0.0.1:0")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """The browser tests' own Label Studio, apart from the one the other tests share
    (tests/conftest.py): the accounts and projects the journeys make never meet theirs."""
    server = start_label_studio(tmp_path_factory.mktemp("labelstudio-e2e") / "data")
    yield server
    stop_label_studio(server)


@pytest.fixture
def ls_settings(settings, label_studio, live_server):
    """The app talks to the session's Label Studio, which posts webhooks to the live test server."""
    settings.LABEL_STUDIO_URL = settings.LABEL_STUDIO_PUBLIC_URL = label_studio.url
    settings.LABEL_STUDIO_TOKEN = label_studio.token
    settings.LABELING_APP_URL = settings.LABELING_WEBHOOK_BASE_URL = live_server.url
    return settings


@dataclass
class Journey:
    """One user's browser: pages watched for errors, screenshots saved by name."""

    context: BrowserContext
    app_url: str
    name: str
    errors: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        def on_console(message) -> None:
            # Every console error of the app's own pages; Label Studio's pages are its own business.
            if message.type == "error" and (message.location.get("url") or page.url).startswith(self.app_url):
                self.errors.append(f"console error on {page.url}: {message.text} ({message.location})")

        def on_page_error(error) -> None:
            if page.url.startswith(self.app_url):
                self.errors.append(f"JavaScript error on {page.url}: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        return page

    def new_page(self) -> Page:
        return self.watch(self.context.new_page())

    def log_in(self, page: Page, username: str, password: str) -> None:
        page.goto(f"{self.app_url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{self.app_url}/projects/")

    def shoot(self, page: Page, what: str, full_page: bool = True) -> Path:
        path = OUTPUT / f"{self.name}-{len(self.screenshots) + 1:02d}-{what}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=full_page)
        self.screenshots.append(path)
        return path


@pytest.fixture
def browser(chromium_path, monkeypatch) -> Iterator[Browser]:
    """A chromium per test: Playwright's sync API runs one instance per thread at a time, and some
    tests start their own. While it runs, its event loop sits in this thread, and Django refuses
    ORM calls from a thread with a running loop; the test's own calls are plain synchronous ones."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path)
        yield browser
        browser.close()


@pytest.fixture
def journey(browser, live_server, request) -> Iterator[Journey]:
    """A fresh browser context at a laptop's screen size (1366×900); the test fails on any error
    an app page logged, once the test itself has passed."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(30_000)
    named = re.match(r"test_the_([a-z]+)_", request.node.name)  # test_the_lead_… → lead-01-….png
    journey = Journey(context=context, app_url=live_server.url, name=named[1] if named else request.node.name)
    yield journey
    context.close()
    assert journey.errors == [], "\n".join(journey.errors)
