from django.apps import AppConfig


class ModelhubConfig(AppConfig):
    name = "apps.modelhub"
    label = "modelhub"

    def ready(self):
        from apps.modelhub import servers  # noqa: F401 — registers the allow-list system check
