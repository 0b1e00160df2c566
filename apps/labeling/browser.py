"""Label Studio as a person's browser uses it: log in, submit and change annotations.

The demo and the tests stand in for annotators with this: the same session-cookie + CSRF
requests the labelling page sends (`POST /api/tasks/<id>/annotations/`,
`PATCH /api/annotations/<id>/`), not an admin shortcut. The app also signs accounts up through it
with the organisation's invitation token (services.accounts): open-source Label Studio sets a
password nowhere else, and its open sign-up is off.
"""

from urllib.parse import quote

import httpx

from apps.labeling.client import LabelStudioError, LabelStudioUnavailable


class LabelStudioAccountExists(LabelStudioError):
    """Label Studio already has an account with this e-mail."""


class LabelStudioBrowser:
    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "LabelStudioBrowser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _form(self, path: str, data: dict) -> httpx.Response:
        try:
            self.http.get(path)
            token = self.http.cookies.get("csrftoken", "")
            return self.http.post(
                path, data={**data, "csrfmiddlewaretoken": token}, headers={"Referer": self.url + path}
            )
        except httpx.TransportError as exc:
            raise LabelStudioUnavailable(f"Label Studio did not answer: {exc}") from exc

    def _api(self, method: str, path: str, payload: dict) -> dict:
        try:
            response = self.http.request(
                method,
                path,
                json=payload,
                headers={"X-CSRFToken": self.http.cookies.get("csrftoken", ""), "Referer": self.url + "/"},
            )
        except httpx.TransportError as exc:
            raise LabelStudioUnavailable(f"Label Studio did not answer: {exc}") from exc
        if response.status_code >= 400:
            raise LabelStudioError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def whoami(self) -> dict | None:
        """{"id", "email", ...} of the logged-in user; None when nobody is."""
        try:
            response = self.http.get("/api/current-user/whoami")
        except httpx.TransportError as exc:
            raise LabelStudioUnavailable(f"Label Studio did not answer: {exc}") from exc
        if response.status_code >= 500:
            raise LabelStudioUnavailable(f"Label Studio answered {response.status_code} to whoami")
        return response.json() if response.status_code == 200 else None

    def current_email(self) -> str:
        me = self.whoami()
        return str(me.get("email", "")) if me else ""

    def try_log_in(self, email: str, password: str) -> dict | None:
        """Log in; the logged-in user, or None if Label Studio refused this e-mail and password."""
        response = self._form("/user/login/", {"email": email, "password": password})
        if response.status_code >= 500:
            raise LabelStudioUnavailable(f"Label Studio answered {response.status_code} to a log-in")
        me = self.whoami()
        return me if me and str(me.get("email", "")).lower() == email.lower() else None

    def log_in(self, email: str, password: str) -> dict:
        """Log in to an existing account (sign-up is off: the app makes accounts, services.accounts)."""
        me = self.try_log_in(email, password)
        if me is None:
            raise LabelStudioError(
                f"Could not log in to Label Studio as {email}: no such account (a lead makes it from the "
                "labelling page) or another password."
            )
        return me

    def sign_up(self, email: str, password: str, invite_token: str) -> dict:
        """Sign an account up with the organisation's invitation token; the new user."""
        response = self._form(f"/user/signup/?token={quote(invite_token)}", {"email": email, "password": password})
        if response.status_code >= 500:
            raise LabelStudioUnavailable(f"Label Studio answered {response.status_code} to a sign-up")
        if response.status_code == 403:
            raise LabelStudioError("Label Studio refused the sign-up: the invitation token is wrong.")
        me = self.whoami()
        if me and str(me.get("email", "")).lower() == email.lower():
            return me
        if "already exists" in response.text:
            raise LabelStudioAccountExists(f"Label Studio already has an account for {email}.")
        raise LabelStudioError(f"Label Studio did not sign {email} up ({response.status_code}).")

    def log_out(self) -> None:
        try:
            self.http.get("/logout")
        except httpx.TransportError:
            pass
        self.http.cookies.clear()

    def has_annotated(self, task_id: int, user_id: int) -> bool:
        """Whether this user has a (submitted or skipped) annotation on the task, as the labelling
        page's task view lists them."""
        try:
            response = self.http.get(f"/api/tasks/{task_id}/annotations/")
        except httpx.TransportError as exc:
            raise LabelStudioUnavailable(f"Label Studio did not answer: {exc}") from exc
        if response.status_code >= 400:
            raise LabelStudioError(f"GET task {task_id}'s annotations: {response.status_code} {response.text[:300]}")
        return any(_user_id(annotation.get("completed_by")) == user_id for annotation in response.json())

    def annotate(self, task_id: int, result: list[dict], lead_time: float = 5.0) -> dict:
        return self._api("POST", f"/api/tasks/{task_id}/annotations/", {"result": result, "lead_time": lead_time})

    def skip(self, task_id: int) -> dict:
        return self._api("POST", f"/api/tasks/{task_id}/annotations/", {"result": [], "was_cancelled": True})

    def change(self, annotation_id: int, result: list[dict]) -> dict:
        return self._api("PATCH", f"/api/annotations/{annotation_id}/", {"result": result})

    def delete(self, annotation_id: int) -> None:
        try:
            response = self.http.delete(
                f"/api/annotations/{annotation_id}/",
                headers={"X-CSRFToken": self.http.cookies.get("csrftoken", ""), "Referer": self.url + "/"},
            )
        except httpx.TransportError as exc:
            raise LabelStudioUnavailable(f"Label Studio did not answer: {exc}") from exc
        if response.status_code >= 400:
            raise LabelStudioError(f"DELETE annotation {annotation_id}: {response.status_code}")


def _user_id(completed_by) -> int | None:
    """Label Studio gives an annotation's author as an id, or as a user object in some views."""
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return completed_by if isinstance(completed_by, int) else None
