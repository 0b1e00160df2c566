from django.urls import path

from apps.curation import views

app_name = "curation"
urlpatterns = [
    path("projects/<int:project_id>/curation/", views.overview, name="overview"),
    path("projects/<int:project_id>/curation/embed/", views.embed_launch, name="embed"),
    path("projects/<int:project_id>/curation/cluster/", views.cluster_launch, name="cluster"),
    path(
        "projects/<int:project_id>/curation/clusterings/<int:clustering_id>/",
        views.clustering_detail,
        name="clustering",
    ),
    path(
        "projects/<int:project_id>/curation/clusterings/<int:clustering_id>/points/",
        views.clustering_points,
        name="clustering_points",
    ),
    path(
        "projects/<int:project_id>/curation/clusterings/<int:clustering_id>/sample/",
        views.gold_sample_launch,
        name="sample",
    ),
    path("projects/<int:project_id>/gold/<int:gold_set_id>/", views.gold_set_detail, name="gold_set"),
    path("projects/<int:project_id>/gold/<int:gold_set_id>/edit/", views.gold_set_edit, name="gold_set_edit"),
    path("projects/<int:project_id>/assets/<int:asset_id>/gold/", views.asset_gold, name="asset_gold"),
]
