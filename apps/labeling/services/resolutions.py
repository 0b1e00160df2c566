"""A lead's decisions for frames whose annotators disagree."""

from django.contrib.auth.models import User

from apps.core.errors import ApplicationError
from apps.labeling.models import GoldResolution, LabelingProject
from apps.labeling.services._common import data_changed
from apps.media.models import Asset
from apps.projects.models import Character


def gold_resolution_set(
    *, labeling_project: LabelingProject, asset: Asset, names: list[str], resolved_by: User
) -> GoldResolution:
    roster = set(Character.objects.filter(project=labeling_project.project).values_list("name", flat=True))
    unknown = sorted(set(names) - roster)
    if unknown:
        raise ApplicationError(f"Not characters of this project: {', '.join(unknown)}")
    if not labeling_project.tasks.filter(asset=asset).exists():
        raise ApplicationError("That frame is not in this gold set.")
    resolution, _ = GoldResolution.objects.update_or_create(
        labeling_project=labeling_project,
        asset=asset,
        defaults={"names": sorted(set(names)), "resolved_by": resolved_by},
    )
    data_changed(labeling_project)
    return resolution
