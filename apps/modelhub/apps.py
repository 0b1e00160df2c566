from django.apps import AppConfig


class ModelhubConfig(AppConfig):
    name = "apps.modelhub"
    label = "modelhub"

    def ready(self):
        from apps.modelhub import handlers, servers  # noqa: F401 — the demo_models job; the allow-list check
