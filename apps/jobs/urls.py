from django.urls import path

from apps.jobs import views

app_name = "jobs"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("<int:job_id>/", views.job_detail, name="detail"),
    path("<int:job_id>/progress/", views.job_progress, name="progress"),
    path("<int:job_id>/cancel/", views.job_cancel, name="cancel"),
    path("launch/<int:project_id>/", views.job_launch, name="launch"),
    path("project/<int:project_id>/", views.project_jobs, name="project_jobs"),
]
