from django.urls import path

from apps.jobs import apis

urlpatterns = [
    path("projects/<int:project_id>/jobs/", apis.ProjectJobListCreateApi.as_view(), name="project-jobs"),
    path("jobs/<int:job_id>/", apis.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<int:job_id>/cancel/", apis.JobCancelApi.as_view(), name="job-cancel"),
]
