from django.urls import path

from apps.exports import apis

urlpatterns = [
    path("projects/<int:project_id>/exports/", apis.ExportListCreateApi.as_view(), name="exports"),
    path("projects/<int:project_id>/exports/preview/", apis.ExportPreviewApi.as_view(), name="export-preview"),
    path("projects/<int:project_id>/exports/<int:export_id>/", apis.ExportDetailApi.as_view(), name="export-detail"),
]
