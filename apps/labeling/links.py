"""Signed, expiring links through which Label Studio's viewer loads our images.

Annotators' browsers fetch them cross-origin (Label Studio's viewer uses crossOrigin="anonymous"),
without our session: the signature is the permission, it names one file, and it expires.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "labeling.file-link"
KINDS = {"asset", "reference"}
VARIANTS = {"image", "thumb"}


@dataclass(frozen=True)
class FileLink:
    kind: str  # "asset" | "reference"
    object_id: int
    variant: str  # "image" | "thumb"


def file_link_url(kind: str, object_id: int, variant: str = "image") -> str:
    token = signing.dumps({"k": kind, "i": object_id, "v": variant}, salt=SALT, compress=True)
    return settings.LABELING_APP_URL.rstrip("/") + reverse("labeling:file", kwargs={"token": token})


def file_link_parse(token: str) -> FileLink:
    """Raises signing.BadSignature (or SignatureExpired) for a forged, altered or old link."""
    payload = signing.loads(token, salt=SALT, max_age=settings.LABELING_IMAGE_LINK_MAX_AGE_SECONDS)
    if not isinstance(payload, dict) or payload.get("k") not in KINDS or payload.get("v") not in VARIANTS:
        raise signing.BadSignature("Malformed link.")
    if not isinstance(payload.get("i"), int):
        raise signing.BadSignature("Malformed link.")
    return FileLink(kind=payload["k"], object_id=payload["i"], variant=payload["v"])
