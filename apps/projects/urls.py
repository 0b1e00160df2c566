from django.urls import path

from apps.projects import views

app_name = "projects"
urlpatterns = [
    path("", views.project_list, name="list"),
    path("new/", views.project_create, name="create"),
    path("<int:project_id>/", views.project_detail, name="detail"),
    path("<int:project_id>/edit/", views.project_edit, name="edit"),
    path("<int:project_id>/members/add/", views.member_add, name="member_add"),
    path("<int:project_id>/characters/new/", views.character_create, name="character_create"),
    path("<int:project_id>/characters/<int:character_id>/", views.character_edit, name="character_edit"),
    path("<int:project_id>/characters/<int:character_id>/delete/", views.character_delete, name="character_delete"),
    path(
        "<int:project_id>/characters/<int:character_id>/references/",
        views.reference_upload,
        name="reference_upload",
    ),
    path(
        "<int:project_id>/references/<int:reference_id>/delete/",
        views.reference_delete,
        name="reference_delete",
    ),
    path("references/<int:reference_id>/file/", views.reference_file, name="reference_file"),
]
