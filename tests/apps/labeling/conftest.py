import pytest

from tests.labelstudio import FaultyProxy, start_label_studio, stop_label_studio


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """One real Label Studio for the session (fresh data dir from the migrated template)."""
    server = start_label_studio(tmp_path_factory.mktemp("labelstudio") / "data")
    yield server
    stop_label_studio(server)


@pytest.fixture
def faulty_proxy(label_studio):
    proxy = FaultyProxy(label_studio.url)
    yield proxy
    proxy.close()


@pytest.fixture
def ls_settings(settings, label_studio, live_server):
    """The app talks to the session's Label Studio, which posts webhooks to the live test server."""
    settings.LABEL_STUDIO_URL = settings.LABEL_STUDIO_PUBLIC_URL = label_studio.url
    settings.LABEL_STUDIO_TOKEN = label_studio.token
    settings.LABEL_STUDIO_BACKOFF_SECONDS = 0.05
    settings.LABELING_APP_URL = settings.LABELING_WEBHOOK_BASE_URL = live_server.url
    return settings
