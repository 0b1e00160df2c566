from django.urls import path

from apps.training import views

app_name = "training"
urlpatterns = [
    path("projects/<int:project_id>/training/", views.index, name="index"),
    path("projects/<int:project_id>/training/launch/", views.launch, name="launch"),
    path("projects/<int:project_id>/training/<int:run_id>/", views.detail, name="detail"),
    path("projects/<int:project_id>/training/<int:run_id>/curves/", views.curves, name="curves"),
]
