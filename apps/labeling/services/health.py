"""Label Studio's health, checked by the worker and kept in the cache: pages read it, never ask.

The periodic reconciliation (beat) checks it; pushes and syncs note what they learn; a page that
finds the reading missing or old asks the worker for a new one (at most once a minute) and shows
the old reading meanwhile.
"""

import logging

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apps.labeling.client import LabelStudioClient, LabelStudioError, LabelStudioNotConfigured
from apps.labeling.selectors import HEALTH_CACHE_KEY

logger = logging.getLogger(__name__)
REQUESTED_KEY = "labeling:labelstudio-health-requested"
CHECK_TIMEOUT_SECONDS = 5.0


def labelstudio_health_record(*, up: bool, detail: str = "", state: str | None = None) -> None:
    """Store what was just learnt about Label Studio (best effort: a cache fault never fails a job)."""
    try:
        previous = cache.get(HEALTH_CACHE_KEY) or {}
        if up and not detail:  # a push or sync went through: keep the version the last check read
            detail = previous.get("detail", "") if previous.get("state") == "up" else "answering"
        cache.set(
            HEALTH_CACHE_KEY,
            {
                "state": state or ("up" if up else "down"),
                "detail": detail[:500],
                "checked_at": timezone.now().isoformat(),
            },
            timeout=None,
        )
    except Exception:  # noqa: BLE001
        logger.warning("Could not store Label Studio's health", exc_info=True)


def labelstudio_health_check(*, client: LabelStudioClient | None = None) -> None:
    """Ask Label Studio for its version once, without retries (a worker's job, never a web request's)."""
    try:
        client = client or LabelStudioClient(timeout=CHECK_TIMEOUT_SECONDS, retries=0)
        version = client.version()
    except LabelStudioNotConfigured as exc:
        labelstudio_health_record(up=False, detail=str(exc), state="unconfigured")
    except LabelStudioError as exc:
        labelstudio_health_record(up=False, detail=str(exc))
    else:
        labelstudio_health_record(up=True, detail=f"Label Studio {version}")


def labelstudio_health_request() -> bool:
    """Queue a check on the cpu worker, unless one was queued in the last minute; True if queued."""
    from apps.labeling.tasks import check_health  # the Celery adapters import the services: looked up here

    try:
        if not cache.add(REQUESTED_KEY, True, timeout=60):
            return False
    except Exception:  # noqa: BLE001 — no cache, no check: the beat's check still comes
        return False

    def enqueue() -> None:
        try:
            check_health.apply_async(queue="cpu")
        except Exception:  # noqa: BLE001 — the broker is down: the beat's check still comes
            logger.warning("Could not queue a Label Studio health check", exc_info=True)

    transaction.on_commit(enqueue)
    return True
