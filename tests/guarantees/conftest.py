import pytest

from tests.conftest import broker_scheme

# Real Celery workers (a process each, on the configured broker and database) for the fault tests.
from tests.integration.test_worker_kill import clean_queue, workers  # noqa: F401


@pytest.fixture
def broker() -> str:
    """The configured broker's transport: "redis" or "filesystem"."""
    return broker_scheme()
