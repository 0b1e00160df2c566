from django.core.management.base import CommandError

from apps.modelhub.models import ModelVersion
from apps.projects.models import Project


def model_version_pick(*, project: Project, role: str, name: str = "") -> ModelVersion:
    """The named version of a role, or the project's default; CommandError names the choices."""
    versions = ModelVersion.objects.filter(project=project, role=role)
    version = versions.filter(name=name).first() if name else versions.filter(is_default=True).first()
    if version is None:
        raise CommandError(f"No {role} {name!r}; known: {', '.join(v.name for v in versions) or 'none'}")
    return version


def model_version_as_run(version: ModelVersion) -> dict:
    """What a model version runs — its weights, adapter, server and settings — not its name or
    whether it is the default: what a run of it depends on."""
    return {
        "model": version.model,
        "backend": version.backend,
        "adapter": version.adapter,
        "base_url": version.base_url,
        "settings": version.settings,
    }
