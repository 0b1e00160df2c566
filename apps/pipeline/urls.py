from django.urls import path

from apps.pipeline import views

app_name = "pipeline"
urlpatterns = [
    path("projects/<int:project_id>/pipeline/", views.pipeline, name="pipeline"),
    path("projects/<int:project_id>/assets/<int:asset_id>/record/", views.frame_record, name="frame_record"),
]
