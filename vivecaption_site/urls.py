from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core import views as core_views

api_urlpatterns = [
    path("", include("apps.accounts.api_urls")),
    path("", include("apps.projects.api_urls")),
    path("", include("apps.jobs.api_urls")),
    path("", include("apps.media.api_urls")),
    path("", include("apps.review.api_urls")),
    path("", include("apps.exports.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="api-docs"),
]

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz/", core_views.healthz, name="healthz"),
    path("accounts/", include("apps.accounts.urls")),
    path("projects/", include("apps.projects.urls")),
    path("jobs/", include("apps.jobs.urls")),
    path("", include("apps.media.urls")),
    path("", include("apps.curation.urls")),
    path("", include("apps.captioning.urls")),
    path("", include("apps.modelhub.urls")),
    path("", include("apps.labeling.urls")),
    path("", include("apps.training.urls")),
    path("", include("apps.evaluation.urls")),
    path("", include("apps.review.urls")),
    path("", include("apps.exports.urls")),
    path("", include("apps.pipeline.urls")),
    path("", include("apps.audit.urls")),
    path("api/", include((api_urlpatterns, "api"))),
    path("admin/", admin.site.urls),
]
