from django.http import Http404

from apps.modelhub.models import ModelVersion
from apps.projects.models import Project


def model_version_default(*, project: Project, role: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, role=role, is_default=True).first()


def model_version_get(*, project: Project, role: str, version_id: int | None = None, name: str = "") -> ModelVersion:
    versions = ModelVersion.objects.filter(project=project, role=role)
    version = (
        versions.filter(id=version_id).first()
        if version_id
        else versions.filter(name=name).first()
        if name
        else versions.filter(is_default=True).first()
    )
    if version is None:
        raise Http404(f"No such {role}.")
    return version
