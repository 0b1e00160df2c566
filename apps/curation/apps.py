from django.apps import AppConfig


class CurationConfig(AppConfig):
    name = "apps.curation"
    label = "curation"

    def ready(self) -> None:
        from apps.curation import handlers  # noqa: F401  (registers embed / cluster / sample_gold)
