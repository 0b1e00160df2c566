from django.urls import path

from apps.captioning import views

app_name = "captioning"
urlpatterns = [
    path("projects/<int:project_id>/runs/", views.runs, name="runs"),
    path("projects/<int:project_id>/runs/detect/", views.detection_launch, name="detect"),
    path("projects/<int:project_id>/runs/caption/", views.caption_launch, name="caption"),
    path("projects/<int:project_id>/runs/detections/<int:run_id>/", views.detection_run_detail, name="detection_run"),
    path("projects/<int:project_id>/runs/captions/<int:run_id>/", views.caption_run_detail, name="caption_run"),
    path(
        "projects/<int:project_id>/runs/captions/<int:run_id>/health/", views.caption_run_health, name="caption_health"
    ),
]
