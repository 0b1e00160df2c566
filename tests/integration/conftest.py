# Real-worker fixtures shared by the integration tests.
from tests.integration.test_worker_kill import clean_queue, workers  # noqa: F401
