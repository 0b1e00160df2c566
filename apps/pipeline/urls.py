from django.urls import path

from apps.pipeline import views

app_name = "pipeline"
urlpatterns = [
    path("projects/<int:project_id>/pipeline/", views.pipeline, name="pipeline"),
]
