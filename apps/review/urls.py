from django.urls import path

from apps.review import views

app_name = "review"
urlpatterns = [
    path("projects/<int:project_id>/reviews/", views.index, name="index"),
    path("projects/<int:project_id>/reviews/new/", views.create, name="create"),
    path("projects/<int:project_id>/reviews/flags/", views.flags, name="flags"),
    path("projects/<int:project_id>/reviews/flags/<int:caption_id>/resolve/", views.resolve, name="resolve"),
    path("projects/<int:project_id>/reviews/<int:review_id>/", views.compare, name="compare"),
    path("projects/<int:project_id>/reviews/<int:review_id>/results/", views.results, name="results"),
    path("projects/<int:project_id>/reviews/<int:review_id>/pairwise/", views.pairwise, name="pairwise"),
    path("projects/<int:project_id>/reviews/<int:review_id>/frames/<int:position>/vote/", views.vote, name="vote"),
    path(
        "projects/<int:project_id>/reviews/<int:review_id>/frames/<int:position>/correct/",
        views.correct,
        name="correct",
    ),
]
