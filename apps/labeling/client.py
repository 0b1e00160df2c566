"""The one module that talks to Label Studio (through `label-studio-sdk`).

Every call retries transient faults (connection refused, timeouts, 5xx, 429) with exponential
backoff, then raises `LabelStudioUnavailable`: callers record "sync pending" and leave the rest
to the periodic reconciliation. A 4xx is our mistake or bad data and raises `LabelStudioError`.
Strings coming back from Label Studio are data, never markup: templates escape them.

A create (project, webhook, task import) is never sent again blindly: a timeout, a dropped
connection or a 5xx may come after Label Studio did the work, so before each retry the client
looks for what the lost attempt made — the project by the marker in its description, the webhook
by its URL in the project, tasks by our asset id in their data — and adopts it. The SDK's own
retries are off (they would re-send a POST after a dropped connection).
"""

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

import httpx
from django.conf import settings
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError
from label_studio_sdk.label_interface import LabelInterface

logger = logging.getLogger(__name__)
T = TypeVar("T")
WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")
# The SDK would retry some faults on its own, with its own sleeps; one retry policy (ours) is enough.
NO_SDK_RETRIES = {"max_retries": 0}


class LabelStudioError(Exception):
    """Label Studio refused a request (4xx): retrying the same request will not help."""


class LabelStudioUnavailable(LabelStudioError):
    """Label Studio is down, slow or failing (after retries): try again later."""


class LabelStudioNotConfigured(LabelStudioError):
    pass


def project_marker(key: str) -> str:
    """Written into the Label Studio project's description: finds the project again after a lost answer."""
    return f"[vivecaption {key}]"


@dataclass(frozen=True)
class RemoteAnnotation:
    id: int
    task_id: int
    result: list[dict]
    completed_by: int | None
    was_cancelled: bool
    updated_at: datetime


def _transient(exc: Exception) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ApiError) and (exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429)


def _annotation(raw: Any) -> RemoteAnnotation:
    get = raw.get if isinstance(raw, dict) else lambda key, default=None: getattr(raw, key, default)
    completed_by = get("completed_by")
    if isinstance(completed_by, dict):  # some endpoints expand the user
        completed_by = completed_by.get("id")
    updated_at = get("updated_at") or get("created_at")
    if isinstance(updated_at, str):
        updated_at = datetime.fromisoformat(updated_at.replace("Z", "+00:00"))
    return RemoteAnnotation(
        id=int(get("id")),
        task_id=int(get("task")),
        result=list(get("result") or []),
        completed_by=int(completed_by) if completed_by is not None else None,
        was_cancelled=bool(get("was_cancelled")),
        updated_at=updated_at,
    )


class LabelStudioClient:
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        backoff_seconds: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.url = (url if url is not None else settings.LABEL_STUDIO_URL).rstrip("/")
        token = token if token is not None else settings.LABEL_STUDIO_TOKEN
        if not self.url or not token:
            raise LabelStudioNotConfigured(
                "Label Studio is not configured: set LABEL_STUDIO_URL and LABEL_STUDIO_TOKEN "
                "(bin/labelstudio start writes them to var/labelstudio.env)."
            )
        self.timeout = timeout if timeout is not None else settings.LABEL_STUDIO_TIMEOUT_SECONDS
        self.retries = retries if retries is not None else settings.LABEL_STUDIO_RETRIES
        self.backoff_seconds = backoff_seconds if backoff_seconds is not None else settings.LABEL_STUDIO_BACKOFF_SECONDS
        self.sleep = sleep
        # max_retries=0: the SDK re-sends after a dropped connection or a 5xx, a create included.
        self.sdk = LabelStudio(base_url=self.url, api_key=token, timeout=self.timeout, max_retries=0)

    def _fault(self, what: str, exc: Exception, attempt: int) -> None:
        """Raise for a fault not worth retrying (or the last one); otherwise wait before the retry."""
        if not _transient(exc):
            if isinstance(exc, ApiError):
                raise LabelStudioError(f"Label Studio refused to {what}: {exc.status_code} {exc.body}") from exc
            raise exc
        if attempt == self.retries:
            raise LabelStudioUnavailable(f"Label Studio did not answer to {what}: {exc}") from exc
        delay = self.backoff_seconds * 2**attempt
        logger.warning("Label Studio %s failed (%s); retry %d in %.1f s", what, exc, attempt + 1, delay)
        self.sleep(delay)

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """A read or an idempotent write: retried as it is."""
        for attempt in range(self.retries + 1):
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 — classified by _fault
                self._fault(what, exc, attempt)
        raise AssertionError("unreachable")

    def _create(self, what: str, send: Callable[[], T], adopt: Callable[[], T | None]) -> T:
        """A create: after a fault whose outcome is unknown, adopt what the lost attempt made before
        sending again (`adopt` returns None when there is nothing to adopt)."""
        for attempt in range(self.retries + 1):
            if attempt:
                adopted = adopt()
                if adopted is not None:
                    logger.warning("Label Studio did %s before its answer was lost: adopted, not sent again", what)
                    return adopted
            try:
                return send()
            except Exception as exc:  # noqa: BLE001 — classified by _fault
                self._fault(what, exc, attempt)
        raise AssertionError("unreachable")

    # --- health -----------------------------------------------------------------------------
    def version(self) -> str:
        response = self._call("report its version", lambda: self.sdk.versions.get(request_options=NO_SDK_RETRIES))
        release = getattr(response, "release", None) or getattr(response, "label_studio_os_package", None)
        if isinstance(release, dict):
            release = release.get("version")
        return str(release or "unknown")

    # --- projects and tasks -----------------------------------------------------------------
    def project_find(self, *, marker: str) -> int | None:
        """The project whose description carries `marker` (the oldest, should there be several)."""
        found: list[int] = []
        page = 1
        while True:
            try:
                pager = self._call(
                    "list projects",
                    lambda page=page: self.sdk.projects.list(
                        page=page, page_size=100, include="id,description", request_options=NO_SDK_RETRIES
                    ),
                )
            except LabelStudioError as exc:
                if isinstance(exc.__cause__, ApiError) and exc.__cause__.status_code == 404 and page > 1:
                    break  # past the last page
                raise
            items = list(pager.items or [])
            found += [int(p.id) for p in items if marker in (getattr(p, "description", "") or "")]
            if len(items) < 100:
                break
            page += 1
        return min(found) if found else None

    def project_create(self, *, title: str, label_config: str, description: str, marker: str | None = None) -> int:
        """Create the project, or adopt the one an earlier, interrupted attempt created (found by `marker`;
        without one, a fresh marker still guards this call's own retries)."""
        marker = marker or project_marker(uuid.uuid4().hex)
        existing = self.project_find(marker=marker)
        if existing is not None:
            return existing
        return self._create(
            "create a project",
            lambda: int(
                self.sdk.projects.create(
                    title=title[:50],
                    label_config=label_config,
                    description=f"{description} {marker}",
                    show_skip_button=True,
                    request_options=NO_SDK_RETRIES,
                ).id
            ),
            adopt=lambda: self.project_find(marker=marker),
        )

    def project_set_model_version(self, *, project_id: int, model_version: str) -> None:
        """Only predictions of the project's model_version pre-fill the labelling view."""
        self._call(
            "set the project's model version",
            lambda: self.sdk.projects.update(
                id=project_id, model_version=model_version, request_options=NO_SDK_RETRIES
            ),
        )

    def tasks_import(self, *, project_id: int, tasks: list[dict]) -> list[int]:
        """Import tasks (each with `data.asset_id`); their Label Studio ids, in the same order.

        After a lost answer the tasks that exist are adopted (matched by asset id) and only the
        rest are sent again.
        """
        wanted = [task["data"]["asset_id"] for task in tasks]
        done: dict[int, int] = {}
        remaining = list(tasks)

        def send() -> list[int]:
            response = self.sdk.projects.import_tasks(
                id=project_id, request=remaining, return_task_ids=True, request_options=NO_SDK_RETRIES
            )
            task_ids = [int(task_id) for task_id in response.task_ids]
            if len(task_ids) != len(remaining):
                raise LabelStudioError(f"Label Studio created {len(task_ids)} tasks for {len(remaining)} frames.")
            done.update(zip((task["data"]["asset_id"] for task in remaining), task_ids, strict=True))
            return [done[asset_id] for asset_id in wanted]

        def adopt() -> list[int] | None:
            nonlocal remaining
            existing = self.task_ids_by_asset(project_id=project_id)
            done.update({asset_id: existing[asset_id] for asset_id in wanted if asset_id in existing})
            remaining = [task for task in tasks if task["data"]["asset_id"] not in done]
            return [done[asset_id] for asset_id in wanted] if not remaining else None

        return self._create("import tasks", send, adopt)

    def task_ids_by_asset(self, *, project_id: int, page_size: int = 1000) -> dict[int, int]:
        """asset id → task id of the project's tasks that carry one (the oldest task per asset)."""
        found: dict[int, int] = {}
        for task in self.tasks(project_id=project_id, page_size=page_size, fields="task_only"):
            asset_id = task["data"].get("asset_id")
            if isinstance(asset_id, int) and not isinstance(asset_id, bool):
                found[asset_id] = min(found.get(asset_id, task["id"]), task["id"])
        return found

    def tasks(self, *, project_id: int, page_size: int = 1000, fields: str = "all") -> Iterator[dict]:
        """Every task with its annotations (fields="task_only": without), page by page (each page
        retried on its own).

        The next page is requested while the caller works through the current one: Label Studio
        spends most of a sync serialising tasks, and that overlaps with our database writes.
        """
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ls-page") as pool:
            page = 1
            pending = pool.submit(self._tasks_page, project_id, page, page_size, fields)
            while pending is not None:
                rows = pending.result()
                pending = (
                    pool.submit(self._tasks_page, project_id, page + 1, page_size, fields)
                    if len(rows) == page_size
                    else None
                )
                page += 1
                yield from rows

    def _tasks_page(self, project_id: int, page: int, page_size: int, fields: str = "all") -> list[dict]:
        try:
            pager = self._call(
                "list tasks",
                # ("include" would trim the payload, but it also reduces annotations to bare ids.)
                lambda: self.sdk.tasks.list(
                    project=project_id, fields=fields, page=page, page_size=page_size, request_options=NO_SDK_RETRIES
                ),
            )
        except LabelStudioError as exc:
            if isinstance(exc.__cause__, ApiError) and exc.__cause__.status_code == 404 and page > 1:
                return []  # past the last page
            raise
        return [{"id": task.id, "data": task.data or {}, "annotations": task.annotations or []} for task in pager.items]

    def task_update_data(self, *, task_id: int, data: dict) -> None:
        self._call(
            "update a task", lambda: self.sdk.tasks.update(id=str(task_id), data=data, request_options=NO_SDK_RETRIES)
        )

    def annotation(self, annotation_id: int) -> RemoteAnnotation | None:
        """The annotation as Label Studio holds it now; None once it was deleted."""
        try:
            raw = self._call(
                "fetch an annotation",
                lambda: self.sdk.annotations.get(id=annotation_id, request_options=NO_SDK_RETRIES),
            )
        except LabelStudioError as exc:
            if isinstance(exc.__cause__, ApiError) and exc.__cause__.status_code == 404:
                return None
            raise
        return _annotation(raw)

    def annotations_of(self, task: dict) -> list[RemoteAnnotation]:
        return [_annotation({**raw, "task": raw.get("task") or task["id"]}) for raw in task.get("annotations") or []]

    def user_email(self, user_id: int) -> str:
        try:
            user = self._call("fetch a user", lambda: self.sdk.users.get(id=user_id, request_options=NO_SDK_RETRIES))
        except LabelStudioError as exc:
            if isinstance(exc.__cause__, ApiError) and exc.__cause__.status_code == 404:
                return ""
            raise
        return str(getattr(user, "email", "") or "")

    # --- webhooks ---------------------------------------------------------------------------
    def webhook_find(self, *, project_id: int, url: str) -> int | None:
        hooks = self._call(
            "list the webhooks",
            lambda: self.sdk.webhooks.list(project=str(project_id), request_options=NO_SDK_RETRIES),
        )
        found = [int(hook.id) for hook in hooks or [] if hook.url == url and hook.project == project_id]
        return min(found) if found else None

    def webhook_create(self, *, project_id: int, url: str, secret: str) -> int:
        """Register the webhook, or adopt the one with this URL in the project (its settings made ours again)."""
        settings_ = {
            "send_payload": True,
            "send_for_all_actions": False,
            "actions": list(WEBHOOK_ACTIONS),
            "headers": {settings.LABEL_STUDIO_WEBHOOK_HEADER: secret},
        }
        existing = self.webhook_find(project_id=project_id, url=url)
        if existing is None:
            created: list[int] = []

            def send() -> int:
                webhook = self.sdk.webhooks.create(
                    url=url, project=project_id, **settings_, request_options=NO_SDK_RETRIES
                )
                created.append(int(webhook.id))
                return created[0]

            existing = self._create(
                "register the webhook", send, adopt=lambda: self.webhook_find(project_id=project_id, url=url)
            )
            if created:  # made just now with these settings
                return existing
        self._call(
            "update the webhook",
            lambda: self.sdk.webhooks.update(
                id=existing, url=url, is_active=True, **settings_, request_options=NO_SDK_RETRIES
            ),
        )
        return existing

    # --- accounts ---------------------------------------------------------------------------
    def invite_token(self) -> str:
        """The organisation's invitation token: sign-up is off without it (DISABLE_SIGNUP_WITHOUT_LINK)."""
        invite = self._call(
            "give the invitation link",
            lambda: self.sdk.organizations.invites.get_invite_link(request_options=NO_SDK_RETRIES),
        )
        return str(invite.token)


@lru_cache(maxsize=8)
def _label_interface(label_config: str) -> LabelInterface:
    # Parsed once per config, not once per task: a push validates thousands of predictions.
    return LabelInterface(label_config)


def prediction_errors(label_config: str, prediction: dict) -> list[str]:
    """Label Studio silently drops an invalid prediction (201, nothing stored): check it first."""
    errors = _label_interface(label_config).validate_prediction(prediction, return_errors=True)
    if errors is True:
        return []
    return [str(error) for error in errors] if isinstance(errors, list) else ([] if errors else ["invalid prediction"])
