from django.urls import path

from apps.exports import views

app_name = "exports"
urlpatterns = [
    path("projects/<int:project_id>/exports/", views.index, name="index"),
    path("projects/<int:project_id>/exports/preview/", views.preview, name="preview"),
    path("projects/<int:project_id>/exports/new/", views.create, name="create"),
    path("projects/<int:project_id>/exports/<int:export_id>/", views.detail, name="detail"),
    path("projects/<int:project_id>/exports/<int:export_id>/download/", views.download, name="download"),
]
