from django.db import models


class BaseModel(models.Model):
    """Timestamps every table carries."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def frame_ids_between(frames: models.QuerySet, start: int = 0, stop: int | None = None) -> list[int]:
    """The asset ids of an ordered membership (rows with `position` and `asset`: a run's or an
    eval set's frames) at positions [start, stop), in order."""
    frames = frames.filter(position__gte=start)
    if stop is not None:
        frames = frames.filter(position__lt=stop)
    return list(frames.order_by("position").values_list("asset_id", flat=True))
