from django.db import models

from apps.core.models import BaseModel
from apps.core.shown import without_server_path


class ModelRole(models.TextChoices):
    DETECTOR = "detector", "Character detector"
    CAPTIONER = "captioner", "Captioner"


class ModelSource(models.TextChoices):
    PROFILE = "profile", "Model profile"
    CUSTOM = "custom", "Added by a lead"
    SFT = "sft", "Fine-tuned (adapter)"


class ModelVersion(BaseModel):
    """A named way to run a VLM for a project: backend + model + optional adapter + settings.

    Detections and captions record the version that made them; an SFT run adds a detector
    version whose adapter sits on top of its base model.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="model_versions")
    role = models.CharField(max_length=20, choices=ModelRole.choices)
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=20, choices=ModelSource.choices, default=ModelSource.CUSTOM)
    backend = models.CharField(max_length=30, default="transformers")
    model = models.CharField(max_length=500, help_text="local folder, hub id, or served model name")
    adapter = models.CharField(max_length=500, blank=True)
    base_url = models.CharField(max_length=500, blank=True, help_text="openai backend: the server's /v1 URL")
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="name of the environment variable holding the API key (never the key)"
    )
    settings = models.JSONField(default=dict, blank=True, help_text="batch_size, max_new_tokens, pixel budgets…")
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["role", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "role", "name"], name="model_version_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def model_shown(self) -> str:
        """The model as pages show it: a hub id or served name as it is, a folder on the server by
        its name alone (its full path is the server's business, not the reader's)."""
        return without_server_path(self.model)

    @property
    def adapter_shown(self) -> str:
        return without_server_path(self.adapter)
