"""Writes for the Label Studio round trip, by concern: push a frozen gold set (push), take webhooks
(webhooks), sync labels back (sync), a lead's resolutions (resolutions), the labelling members'
Label Studio accounts (accounts), Label Studio's health as the worker sees it (health).

Nothing here trusts what Label Studio sends unasked: a webhook only names annotation ids, which
are fetched again through the API; the periodic reconciliation pages through every task, so a
missed, duplicated or reordered webhook changes nothing in the end.
"""

from apps.labeling.services.accounts import (
    AccountOutcome,
    labeling_member_accounts_ensure,
    labelstudio_account_ensure,
)
from apps.labeling.services.health import (
    labelstudio_health_check,
    labelstudio_health_record,
    labelstudio_health_request,
)
from apps.labeling.services.push import (
    control_asset_ids,
    labeling_project_start,
    labeling_push,
    labeling_push_retry,
)
from apps.labeling.services.resolutions import gold_resolution_set
from apps.labeling.services.sync import (
    labeling_reconcile_all,
    labeling_sync_start,
    labels_reconcile,
    labels_sync_pending,
)
from apps.labeling.services.webhooks import (
    WEBHOOK_ACTIONS,
    WebhookOutcome,
    annotations_mark_pending,
    sync_pending_enqueue,
    webhook_receive,
)

__all__ = [
    "WEBHOOK_ACTIONS",
    "AccountOutcome",
    "WebhookOutcome",
    "annotations_mark_pending",
    "control_asset_ids",
    "gold_resolution_set",
    "labeling_member_accounts_ensure",
    "labeling_project_start",
    "labeling_push",
    "labeling_push_retry",
    "labeling_reconcile_all",
    "labeling_sync_start",
    "labels_reconcile",
    "labels_sync_pending",
    "labelstudio_account_ensure",
    "labelstudio_health_check",
    "labelstudio_health_record",
    "labelstudio_health_request",
    "sync_pending_enqueue",
    "webhook_receive",
]
