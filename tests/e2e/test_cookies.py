"""Issue #12 item 6: the app and Label Studio on one host, one browser: logging in to one must not
log the browser out of the other. Both are Django apps; cookies are scoped by host, not by port, so
under Django's default cookie names Label Studio's `sessionid` replaced the app's."""

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import sync_playwright

from apps.accounts.services import user_create
from apps.core.permissions import Role

pytestmark = pytest.mark.e2e
PASSWORD = "s3cret-pass-x"
SCREENSHOT = "/tmp/vivecaption-e2e-app-and-label-studio.png"


def _ls_admin(label_studio) -> tuple[str, str]:
    lines = (label_studio.data_dir / "credentials.env").read_text().splitlines()
    credentials = dict(line.split("=", 1) for line in lines if "=" in line)
    return "admin@example.com", credentials["LS_ADMIN_PASSWORD"]  # as bin/labelstudio creates it


def _both_logins(chromium_path, app_url, label_studio, screenshot=None) -> dict:
    """Log in to the app, then to Label Studio, in one browser context; then come back to each."""
    email, ls_password = _ls_admin(label_studio)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path)
        try:
            page = browser.new_context().new_page()
            page.goto(f"{app_url}/accounts/login/")
            page.fill("input[name=username]", "lea")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{app_url}/projects/")

            page.goto(f"{label_studio.url}/user/login/")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", ls_password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/user/login" not in url)
            ls_after_login = page.url

            page.goto(f"{app_url}/projects/")  # back to the app: still logged in?
            app_url_after = page.url
            me = page.request.get(f"{app_url}/api/me/")  # the same cookies, session-authenticated
            if screenshot:
                page.screenshot(path=screenshot, full_page=True)
            page.goto(f"{label_studio.url}/projects/")  # back to Label Studio: still logged in?
            try:  # for the screenshot only: the checks below do not need the page drawn
                page.wait_for_load_state("networkidle", timeout=15_000)
            except PlaywrightTimeoutError:
                pass
            if screenshot:
                page.screenshot(path=screenshot.replace(".png", "-ls.png"))
            whoami = page.request.get(f"{label_studio.url}/api/current-user/whoami")
            cookies = {(c["name"], c["domain"]) for c in page.context.cookies()}
            return {
                "ls_after_login": ls_after_login,
                "app_url_after": app_url_after,
                "app_me": (me.status, me.text()),
                "ls_url_after": page.url,
                "ls_whoami": (whoami.status, whoami.text()),
                "cookies": cookies,
            }
        finally:
            browser.close()


@pytest.fixture
def lea(role_groups):
    return user_create(username="lea", password=PASSWORD, role=Role.LEAD)


def test_one_browser_stays_logged_in_to_the_app_and_to_label_studio(chromium_path, live_server, label_studio, lea):
    seen = _both_logins(chromium_path, live_server.url, label_studio, screenshot=SCREENSHOT)
    assert "/user/login" not in seen["ls_after_login"]
    assert seen["app_url_after"] == f"{live_server.url}/projects/"  # not /accounts/login/?next=…
    status, body = seen["app_me"]
    assert status == 200 and '"username":"lea"' in body
    assert "/user/login" not in seen["ls_url_after"]
    status, body = seen["ls_whoami"]
    assert status == 200 and "admin@example.com" in body
    names = {name for name, _ in seen["cookies"]}
    assert {"vivecaption_sessionid", "vivecaption_csrftoken", "sessionid", "csrftoken"} <= names


def test_under_django_default_cookie_names_label_studio_logs_the_app_out(
    chromium_path, live_server, label_studio, lea, settings
):
    """The old settings, to show that the test above would catch the collision."""
    settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME = "sessionid", "csrftoken"
    seen = _both_logins(chromium_path, live_server.url, label_studio)
    assert seen["app_url_after"].startswith(f"{live_server.url}/accounts/login/")
    assert seen["app_me"][0] in (401, 403)
