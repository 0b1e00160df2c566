from django.urls import path

from apps.projects import apis

urlpatterns = [
    path("projects/", apis.ProjectListCreateApi.as_view(), name="projects"),
    path("projects/<int:project_id>/", apis.ProjectDetailApi.as_view(), name="project-detail"),
    path("projects/<int:project_id>/characters/", apis.CharacterListCreateApi.as_view(), name="characters"),
    path(
        "projects/<int:project_id>/characters/<int:character_id>/",
        apis.CharacterDetailApi.as_view(),
        name="character-detail",
    ),
    path(
        "projects/<int:project_id>/characters/<int:character_id>/references/",
        apis.ReferenceImageUploadApi.as_view(),
        name="character-references",
    ),
]
