from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Who launched, cancelled, exported, corrected or changed roles, when, on what: an append-only
    log in the database, written by the services that do those things, shown to leads."""

    name = "apps.audit"
    label = "audit"

    def ready(self) -> None:
        from apps.audit import receivers  # noqa: F401 — role changes, however they are made
