"""Label Studio's webhooks: authenticated, validated, and only remembered — the sync fetches the annotations."""

import hmac
import json
import logging
import secrets
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from apps.labeling import client
from apps.labeling.models import LabelingProject, PendingAnnotation

logger = logging.getLogger(__name__)
WEBHOOK_ACTIONS = set(client.WEBHOOK_ACTIONS)


@dataclass
class WebhookOutcome:
    status: int
    detail: str
    annotation_ids: list[int] = field(default_factory=list)


def webhook_receive(*, labeling_project_id: int, secret: str, body: bytes) -> WebhookOutcome:
    """Authenticate, validate and remember which annotations changed; the sync fetches them."""
    labeling_project = LabelingProject.objects.filter(id=labeling_project_id).first()
    expected = labeling_project.webhook_secret if labeling_project else secrets.token_urlsafe(32)
    # Compared in constant time, and an unknown project costs the same as a wrong secret.
    if not secret or not hmac.compare_digest(secret.encode(), expected.encode()) or labeling_project is None:
        return WebhookOutcome(401, "Missing or wrong webhook secret.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return WebhookOutcome(400, "The body is not JSON.")
    if not isinstance(payload, dict) or payload.get("action") not in WEBHOOK_ACTIONS:
        return WebhookOutcome(400, f"Unknown action; expected one of {sorted(WEBHOOK_ACTIONS)}.")
    project_id = (payload.get("project") or {}).get("id") if isinstance(payload.get("project"), dict) else None
    if project_id is not None and project_id != labeling_project.ls_project_id:
        return WebhookOutcome(400, "The webhook names another Label Studio project.")
    if payload["action"] == "ANNOTATIONS_DELETED":
        annotations = payload.get("annotations")
    else:
        annotations = [payload.get("annotation")]
    if not isinstance(annotations, list) or not annotations:
        return WebhookOutcome(400, "No annotation in the payload.")
    ids = [entry.get("id") if isinstance(entry, dict) else None for entry in annotations]
    if not all(
        isinstance(annotation_id, int) and not isinstance(annotation_id, bool) and annotation_id > 0
        for annotation_id in ids
    ):
        return WebhookOutcome(400, "Annotation ids must be positive integers.")
    annotations_mark_pending(labeling_project=labeling_project, annotation_ids=ids)
    return WebhookOutcome(202, "queued", ids)


def annotations_mark_pending(*, labeling_project: LabelingProject, annotation_ids: list[int]) -> None:
    """One pending row per annotation however many webhooks name it; one sync queued per burst."""
    from apps.labeling.tasks import sync_pending  # the Celery adapters import the services: looked up here

    with transaction.atomic():
        PendingAnnotation.objects.bulk_create(
            [PendingAnnotation(labeling_project=labeling_project, ls_annotation_id=i) for i in set(annotation_ids)],
            ignore_conflicts=True,
        )
        # A webhook arriving while a sync runs must be fetched again: newer content may follow.
        PendingAnnotation.objects.filter(labeling_project=labeling_project, ls_annotation_id__in=annotation_ids).update(
            received_at=timezone.now()
        )
        if LabelingProject.objects.filter(id=labeling_project.id, sync_queued=False).update(sync_queued=True):
            transaction.on_commit(lambda: sync_pending_enqueue(labeling_project.id, sync_pending))


def sync_pending_enqueue(labeling_project_id: int, task) -> None:
    try:
        task.apply_async(args=[labeling_project_id], queue="cpu")
    except Exception:  # noqa: BLE001 — the broker is down: the periodic reconciliation catches up
        logger.exception("Could not queue the label sync of labelling project %s", labeling_project_id)
        LabelingProject.objects.filter(id=labeling_project_id).update(sync_queued=False)
