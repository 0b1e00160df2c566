from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"

    def ready(self) -> None:
        # Job kinds register themselves on import.
        from apps.jobs import handlers  # noqa: F401
