from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.core.shown import without_server_path


def embeddings_path(instance: "EmbeddingRun", filename: str) -> str:
    return f"projects/{instance.project_id}/embeddings/{filename}"


class EmbeddingRun(BaseModel):
    """CLIP vectors of a project's assets in one model's space, stored as one .npz (ids + vectors).

    A new run for the same model reuses the previous run's vectors and embeds only new assets.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="embedding_runs")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_key = models.CharField(max_length=300, db_index=True)
    model_name = models.CharField(max_length=200)
    pretrained = models.CharField(max_length=500, blank=True)
    vectors = models.FileField(upload_to=embeddings_path, max_length=300)
    count = models.PositiveIntegerField(default=0)
    dim = models.PositiveIntegerField(default=0)
    embedded = models.PositiveIntegerField(default=0, help_text="assets embedded by this run")
    reused = models.PositiveIntegerField(default=0, help_text="vectors carried over from the previous run")
    failed = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=50, blank=True)
    seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.model_shown} · {self.count} vectors"

    @property
    def model_shown(self) -> str:
        return without_server_path(self.model_name)

    @property
    def model_key_shown(self) -> str:
        return without_server_path(self.model_key)


class ClusteringRun(BaseModel):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="clustering_runs")
    embedding_run = models.ForeignKey(EmbeddingRun, on_delete=models.CASCADE, related_name="clusterings")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    params = models.JSONField(default=dict)
    point_count = models.PositiveIntegerField(default=0)
    n_clusters = models.PositiveIntegerField(default=0)
    noise_count = models.PositiveIntegerField(default=0)
    cluster_sizes = models.JSONField(default=dict, help_text="cluster label → size")
    seconds = models.JSONField(default=dict)

    class Meta:
        ordering = ["-id"]

    @property
    def noise_share(self) -> float:
        return self.noise_count / self.point_count if self.point_count else 0.0


class ProjectionPoint(models.Model):
    """One asset's 2-D UMAP position and HDBSCAN label (-1 = noise) in a clustering run."""

    clustering = models.ForeignKey(ClusteringRun, on_delete=models.CASCADE, related_name="points")
    asset = models.ForeignKey("media.Asset", on_delete=models.CASCADE, related_name="+")
    x = models.FloatField()
    y = models.FloatField()
    cluster = models.IntegerField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["clustering", "asset"], name="projection_point_unique")]
        indexes = [models.Index(fields=["clustering", "cluster"], name="projection_cluster")]

    def __str__(self) -> str:
        return f"asset {self.asset_id} → cluster {self.cluster}"


class GoldSetStatus(models.TextChoices):
    DRAFT = "draft", "Draft (editable)"
    FROZEN = "frozen", "Frozen (labelling started)"


class GoldSet(BaseModel):
    """A versioned set of frames to label; frozen once labelling starts."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="gold_sets")
    version = models.PositiveIntegerField()
    clustering = models.ForeignKey(ClusteringRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=GoldSetStatus.choices, default=GoldSetStatus.DRAFT)
    frozen_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="gold_set_version_unique")]

    def __str__(self) -> str:
        return f"Gold set v{self.version}"


class GoldItemSource(models.TextChoices):
    CENTROID = "centroid", "Nearest to cluster centroid"
    RANDOM = "random", "Random cluster member"
    TOP_UP = "top-up", "Top-up to target size"
    NOISE = "noise", "Drawn from noise"
    MANUAL = "manual", "Added by hand"


class GoldItem(BaseModel):
    gold_set = models.ForeignKey(GoldSet, on_delete=models.CASCADE, related_name="items")
    asset = models.ForeignKey("media.Asset", on_delete=models.CASCADE, related_name="gold_items")
    cluster = models.IntegerField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=GoldItemSource.choices)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["cluster", "id"]
        constraints = [models.UniqueConstraint(fields=["gold_set", "asset"], name="gold_item_unique")]
