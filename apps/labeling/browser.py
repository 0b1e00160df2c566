"""Label Studio as a person's browser uses it: sign up, log in, submit and change annotations.

The demo and the tests stand in for annotators with this: the same session-cookie + CSRF
requests the labelling page sends (`POST /api/tasks/<id>/annotations/`,
`PATCH /api/annotations/<id>/`), not an admin shortcut.
"""

import httpx

from apps.labeling.client import LabelStudioError, LabelStudioUnavailable


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

    def current_email(self) -> str:
        response = self.http.get("/api/current-user/whoami")
        return response.json().get("email", "") if response.status_code == 200 else ""

    def log_in(self, email: str, password: str) -> None:
        """Log in; an unknown e-mail is signed up first (open sign-up, as on a fresh Label Studio)."""
        self._form("/user/login/", {"email": email, "password": password})
        if self.current_email().lower() == email.lower():
            return
        self._form("/user/signup/", {"email": email, "password": password})
        if self.current_email().lower() != email.lower():
            raise LabelStudioError(f"Could not log in to Label Studio as {email} (wrong password?).")

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
