from django.conf import settings
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.modelhub.models import ModelRole, ModelSource, ModelVersion
from apps.modelhub.profiles import profile_models
from apps.modelhub.servers import base_url_normalised
from apps.projects.models import Project
from workers.vlm.allowlist import URLRefused

API_KEY_ENV_PREFIX = "VIVE_VLM_KEY_"


@transaction.atomic
def model_versions_ensure(*, project: Project) -> list[ModelVersion]:
    """Give the project the current profile's models (once); a default per role if none is set."""
    for entry in profile_models(settings.MODEL_PROFILE):
        version, _ = ModelVersion.objects.get_or_create(
            project=project,
            role=entry.role,
            name=entry.name,
            defaults={"model": entry.model, "source": ModelSource.PROFILE},
        )
        has_default = ModelVersion.objects.filter(project=project, role=entry.role, is_default=True).exists()
        if entry.default and not has_default:
            version.is_default = True
            version.save(update_fields=["is_default", "updated_at"])
    return list(ModelVersion.objects.filter(project=project))


@transaction.atomic
def model_version_create(
    *,
    project: Project,
    role: str,
    name: str,
    model: str,
    backend: str = "transformers",
    adapter: str = "",
    base_url: str = "",
    api_key_env: str = "",
    settings_: dict | None = None,
    source: str = ModelSource.CUSTOM,
) -> ModelVersion:
    from workers.vlm.backends import BACKENDS

    if role not in ModelRole.values:
        raise ApplicationError(f"Unknown role {role!r}.", field="role")
    if backend not in BACKENDS:
        raise ApplicationError(f"Unknown backend {backend!r}; known: {', '.join(sorted(BACKENDS))}.", field="backend")
    if backend == "openai" and not base_url:
        raise ApplicationError("The openai backend needs the server's base URL.", field="base_url")
    if base_url:
        # Workers send frames and the API key to this URL: only servers the deployer listed (no
        # internal services, no exfiltration), compared as parsed URLs; stored in its normal form.
        try:
            base_url = base_url_normalised(base_url)
        except URLRefused as exc:
            raise ApplicationError(str(exc), field="base_url") from None
    if api_key_env and not api_key_env.startswith(API_KEY_ENV_PREFIX):
        # Workers read this variable and send it to the server: never any other secret.
        raise ApplicationError(
            f"The API key variable's name must start with {API_KEY_ENV_PREFIX}.", field="api_key_env"
        )
    if ModelVersion.objects.filter(project=project, role=role, name=name).exists():
        raise ApplicationError(f"A {role} named {name!r} already exists.", field="name")
    return ModelVersion.objects.create(
        project=project,
        role=role,
        name=name,
        model=model,
        backend=backend,
        adapter=adapter,
        base_url=base_url,
        api_key_env=api_key_env,
        settings=settings_ or {},
        source=source,
    )


@transaction.atomic
def model_version_make_default(*, version: ModelVersion) -> ModelVersion:
    ModelVersion.objects.filter(project=version.project, role=version.role).update(is_default=False)
    version.is_default = True
    version.save(update_fields=["is_default", "updated_at"])
    return version


# What the demo's trained models run with: their own sizes, and decoding constrained to the schema.
DEMO_MODEL_SETTINGS = {
    ModelRole.CAPTIONER: {
        "constrained": True,
        "max_new_tokens": 160,
        # As it was trained (workers/demo/training.py): 64 px references, one tile each; a larger
        # reference would be cut into tiles it never saw.
        "reference_max_pixels": 64 * 64,
        "target_max_pixels": 192 * 108,
    },
    # The detector base is a toy taught to see, never told a name (workers/demo/training.py):
    # fine-tuning it needs a toy's push (a higher rate, more epochs; TINY_MODELS.md), which the SFT
    # form offers as its defaults.
    ModelRole.DETECTOR: {
        "constrained": True,
        "max_new_tokens": 32,
        "reference_max_pixels": 56 * 56,
        "target_max_pixels": 224 * 128,
        "sft_recipe": {"epochs": 30, "learning_rate": 3e-3, "batch_size": 16, "warmup_ratio": 0.05, "dropout": 0.0},
    },
}


@transaction.atomic
def demo_model_register(*, project: Project, role: str, name: str, folder) -> ModelVersion:
    """A demo model trained here, as the project's default for its role (again: the same row)."""
    version, _ = ModelVersion.objects.update_or_create(
        project=project,
        role=role,
        name=name,
        defaults={"model": str(folder), "source": ModelSource.CUSTOM, "settings": DEMO_MODEL_SETTINGS[role]},
    )
    return model_version_make_default(version=version)
