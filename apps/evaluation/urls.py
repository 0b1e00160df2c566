from django.urls import path

from apps.evaluation import views

app_name = "evaluation"
urlpatterns = [
    path("projects/<int:project_id>/evaluation/", views.index, name="index"),
    path("projects/<int:project_id>/evaluation/eval-sets/", views.eval_set_create, name="eval_set_create"),
    path("projects/<int:project_id>/evaluation/start/", views.comparison_start, name="start"),
    path("projects/<int:project_id>/evaluation/<int:comparison_id>/", views.detail, name="detail"),
    path("projects/<int:project_id>/evaluation/<int:comparison_id>/frames/", views.frames, name="frames"),
    path(
        "projects/<int:project_id>/evaluation/<int:comparison_id>/report.<str:fmt>",
        views.download,
        name="download",
    ),
]
