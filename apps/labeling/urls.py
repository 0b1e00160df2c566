from django.urls import path

from apps.labeling import views

app_name = "labeling"
urlpatterns = [
    path("projects/<int:project_id>/labeling/", views.index, name="index"),
    path("projects/<int:project_id>/labeling/start/", views.start, name="start"),
    path("projects/<int:project_id>/labeling/health/", views.health, name="health"),
    path("projects/<int:project_id>/labeling/accounts/", views.accounts, name="accounts"),
    path("projects/<int:project_id>/labeling/<int:labeling_project_id>/", views.detail, name="detail"),
    path("projects/<int:project_id>/labeling/<int:labeling_project_id>/sync/", views.sync, name="sync"),
    path("projects/<int:project_id>/labeling/<int:labeling_project_id>/resolve/", views.resolve, name="resolve"),
    path("labeling/webhook/<int:labeling_project_id>/", views.webhook, name="webhook"),
    path("labeling/files/<str:token>/", views.file, name="file"),
]
