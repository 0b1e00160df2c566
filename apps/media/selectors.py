from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.http import Http404

from apps.core.pages import keyset_page
from apps.media.models import Asset, GroundTruthManifest, Video
from apps.projects.models import Project
from apps.projects.selectors import project_list

ASSET_PAGE_SIZE = 48


def asset_page(
    *,
    project: Project,
    video_id: int | None = None,
    t_from: float | None = None,
    t_to: float | None = None,
    after: int | None = None,
    limit: int | None = None,
) -> tuple[list[Asset], int | None]:
    """One keyset page in upload order (frames of one video come in time order): rows after `after`.

    Returns the page and the `after` value of the next page (None on the last page).
    """
    assets = Asset.objects.filter(project=project).select_related("video")
    if video_id is not None:
        assets = assets.filter(video_id=video_id)
    if t_from is not None:
        assets = assets.filter(timestamp_seconds__gte=t_from)
    if t_to is not None:
        assets = assets.filter(timestamp_seconds__lte=t_to)
    limit = ASSET_PAGE_SIZE if limit is None else max(1, min(limit, 500))
    return keyset_page(assets, after, limit)


def asset_get(*, user: User | AnonymousUser, asset_id: int, project: Project | None = None) -> Asset:
    """The asset if the user is a member of its project; 404 otherwise (guessing ids reveals nothing)."""
    assets = Asset.objects.select_related("video", "project").filter(project__in=project_list(user=user))
    if project is not None:
        assets = assets.filter(project=project)
    asset = assets.filter(id=asset_id).first()
    if asset is None:
        raise Http404("No such asset.")
    return asset


def video_list(*, project: Project) -> QuerySet[Video]:
    return Video.objects.filter(project=project).order_by("original_name", "id")


def asset_count(*, project: Project) -> int:
    return Asset.objects.filter(project=project).count()


def ground_truth_names(*, project: Project, asset_ids: list[int] | None = None) -> dict[int, list[str]]:
    """Who is in each frame according to stored ground-truth manifests (the demo world's).

    A manifest lists one-second shots of one video; a frame belongs to the shot its timestamp
    falls in. Frames of videos without a manifest are absent from the result.
    """
    truth: dict[int, list[str]] = {}
    for manifest in GroundTruthManifest.objects.filter(project=project, video__isnull=False):
        shots = {int(shot["second"]): sorted(shot["characters"]) for shot in manifest.data.get("shots", [])}
        frames = Asset.objects.filter(project=project, video_id=manifest.video_id, timestamp_seconds__isnull=False)
        if asset_ids is not None:
            frames = frames.filter(id__in=asset_ids)
        for asset_id, seconds in frames.values_list("id", "timestamp_seconds"):
            shot = shots.get(int(seconds + 1e-6))  # timestamps are k / fps: guard against 2.9999…
            if shot is not None:
                truth[asset_id] = shot
    return truth
