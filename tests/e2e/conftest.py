"""Browser tests: Debian's chromium driven by Playwright, against the app on 127.0.0.1 and a real
Label Studio on 127.0.0.1 (tests/labelstudio.py). `make test` installs chromium when missing;
these tests never skip."""

import os
from pathlib import Path

import pytest
from pytest_django.live_server_helper import LiveServer

from tests.labelstudio import start_label_studio, stop_label_studio

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))


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
    server = start_label_studio(tmp_path_factory.mktemp("labelstudio-e2e") / "data")
    yield server
    stop_label_studio(server)
