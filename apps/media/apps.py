from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "apps.media"
    label = "media"

    def ready(self) -> None:
        from apps.media import handlers  # noqa: F401  (registers the ingest job kind)
