from django.urls import path

from apps.media import views

app_name = "media"
urlpatterns = [
    path("projects/<int:project_id>/assets/", views.asset_browser, name="browser"),
    path("projects/<int:project_id>/assets/<int:asset_id>/", views.asset_detail, name="detail"),
    path("projects/<int:project_id>/ingest/", views.ingest_upload, name="ingest"),
    path("projects/<int:project_id>/footage/", views.project_footage, name="project_footage"),
    path("media/assets/<int:asset_id>/image/", views.asset_file, {"variant": "image"}, name="image"),
    path("media/assets/<int:asset_id>/thumb/", views.asset_file, {"variant": "thumb"}, name="thumb"),
]
