from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "apps.labeling"
    label = "labeling"

    def ready(self) -> None:
        from apps.labeling import handlers  # noqa: F401  (registers labeling_push / labeling_sync)
