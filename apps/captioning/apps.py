from django.apps import AppConfig


class CaptioningConfig(AppConfig):
    name = "apps.captioning"
    label = "captioning"

    def ready(self) -> None:
        from apps.captioning import handlers  # noqa: F401  (registers detect / caption)
