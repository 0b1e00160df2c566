from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "apps.review"
    label = "review"

    def ready(self) -> None:
        from apps.review import handlers  # noqa: F401  (registers review_pairwise_judge)
