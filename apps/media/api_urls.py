from django.urls import path

from apps.media import apis

urlpatterns = [
    path("projects/<int:project_id>/assets/", apis.AssetListApi.as_view(), name="assets"),
    path("projects/<int:project_id>/assets/<int:asset_id>/", apis.AssetDetailApi.as_view(), name="asset-detail"),
    path("projects/<int:project_id>/videos/", apis.VideoListApi.as_view(), name="videos"),
    path("projects/<int:project_id>/uploads/", apis.IngestUploadApi.as_view(), name="uploads"),
]
