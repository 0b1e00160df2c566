from django.apps import AppConfig


class PipelineConfig(AppConfig):
    """The project's pipeline page: reads every stage's app, so it sits above them all."""

    name = "apps.pipeline"
    label = "pipeline"
