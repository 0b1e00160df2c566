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
