from django.urls import path

from apps.modelhub import views

app_name = "modelhub"
urlpatterns = [
    path("projects/<int:project_id>/models/add/", views.model_version_add, name="add"),
    path("projects/<int:project_id>/models/<int:version_id>/default/", views.model_version_default, name="default"),
]
