from django.apps import AppConfig


class ModelhubConfig(AppConfig):
    name = "apps.modelhub"
    label = "modelhub"

    def ready(self):
        from apps.modelhub import handlers, servers  # noqa: F401 — the demo_models job; the allow-list check
        from apps.modelhub.services import model_versions_ensure
        from apps.projects.signals import project_created

        def give_new_project_its_models(sender, project, **kwargs):
            model_versions_ensure(project=project)

        # weak=False: the receiver is a local function, which a weak reference would let go the
        # moment ready() returns (new projects then got no models, and the runs page no detector).
        project_created.connect(give_new_project_its_models, weak=False, dispatch_uid="modelhub.model_versions_ensure")
