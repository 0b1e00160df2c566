from django.urls import path

from apps.audit import views

app_name = "audit"
urlpatterns = [
    path("projects/<int:project_id>/audit/", views.project_log, name="project"),
    path("audit/accounts/", views.accounts_log, name="accounts"),
]
