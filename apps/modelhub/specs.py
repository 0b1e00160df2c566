"""Turn a ModelVersion row into the worker library's ModelSpec (worker side: builds tiny models)."""

import hashlib
import json
import os
from pathlib import Path

from django.conf import settings

from apps.modelhub.models import ModelVersion
from apps.modelhub.servers import allowed_base_urls
from apps.projects.models import ReferenceImage

SPEC_SETTINGS = (
    "dtype",
    "max_new_tokens",
    "batch_size",
    "reference_max_pixels",
    "target_max_pixels",
    "timeout_seconds",
    "max_retries",
    "concurrency",
    "prefix_reuse",
    "constrained",
    "routing_header",
)
# Tiny models decode to the answer's schema: random weights would otherwise rarely say anything parseable.
TINY_DEFAULTS = {
    "reference_max_pixels": 112 * 112,
    "target_max_pixels": 224 * 224,
    "max_new_tokens": 24,
    "constrained": True,
}


def reference_set_key(project_id: int) -> str:
    """The project's reference set (its characters, their descriptions and reference images) as a
    short digest: the routing key of its requests to a served model. Requests with one key share
    the prompt prefix, so a prefix-aware router keeps them on one replica's prefix cache."""
    references = ReferenceImage.objects.filter(character__project_id=project_id).order_by("character__name", "id")
    rows = list(references.values_list("character__name", "character__description", "image"))
    return f"vive-{project_id}-" + hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def model_spec_for(version: ModelVersion, **overrides):
    from workers.vlm.backends import ModelSpec

    model = version.model
    extra = {}
    if model.startswith("tiny/"):
        from workers.vlm.tiny import build_tiny_internvl, build_tiny_qwen2_5_vl

        builder = {"tiny/qwen2_5_vl": build_tiny_qwen2_5_vl, "tiny/internvl": build_tiny_internvl}[model]
        model = str(builder(Path(settings.MODELS_DIR) / model))
        extra = dict(TINY_DEFAULTS)
    if version.backend == "openai":
        extra["routing_key"] = reference_set_key(version.project_id)
    extra.update({key: value for key, value in version.settings.items() if key in SPEC_SETTINGS})
    extra.update(overrides)
    return ModelSpec(
        name=version.name,
        backend=version.backend,
        model=model,
        adapter=version.adapter or None,
        base_url=version.base_url,
        # The worker checks base_url against this list again before it sends anything.
        allowed_base_urls=allowed_base_urls() if version.backend == "openai" or version.base_url else (),
        # Only VIVE_VLM_KEY_* variables: a stored row can never make a worker send another secret.
        api_key=os.environ.get(version.api_key_env, "") if version.api_key_env.startswith("VIVE_VLM_KEY_") else "",
        **extra,
    )
