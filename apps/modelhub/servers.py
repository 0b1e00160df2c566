"""The model-server allow-list (VLM_ALLOWED_BASE_URLS) on the Django side.

The rule itself lives in workers/vlm/allowlist.py (plain Python, shared with the worker, which
checks again before it sends); here the setting is validated — a malformed entry is a
configuration error (ImproperlyConfigured, and a system check at startup) — and handed on.
"""

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from workers.vlm.allowlist import AllowListError, check_base_url, parse_allow_list


def allowed_base_urls() -> tuple[str, ...]:
    """The setting's entries, validated, as the plain data a ModelSpec carries to the worker."""
    entries = settings.VLM_ALLOWED_BASE_URLS
    try:
        return tuple(entry.url for entry in parse_allow_list(entries))
    except AllowListError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def base_url_normalised(url: str) -> str:
    """The URL in its normal form if the allow-list allows it; URLRefused (a ValueError) naming why not."""
    return check_base_url(url, allowed_base_urls()).url


@register()
def allow_list_check(app_configs=None, **kwargs):
    try:
        parse_allow_list(settings.VLM_ALLOWED_BASE_URLS)
    except AllowListError as exc:
        return [Error(str(exc), hint="See the comment on VLM_ALLOWED_BASE_URLS in .env.example.", id="modelhub.E001")]
    return []
