from django.urls import path

from apps.review import apis

urlpatterns = [
    path("projects/<int:project_id>/reviews/", apis.ReviewListApi.as_view(), name="reviews"),
    path(
        "projects/<int:project_id>/reviews/<int:review_id>/frame/", apis.ReviewFrameApi.as_view(), name="review-frame"
    ),
    path("projects/<int:project_id>/reviews/<int:review_id>/votes/", apis.VoteApi.as_view(), name="review-votes"),
    path(
        "projects/<int:project_id>/reviews/<int:review_id>/corrections/",
        apis.CorrectionApi.as_view(),
        name="review-corrections",
    ),
    path(
        "projects/<int:project_id>/reviews/<int:review_id>/results/", apis.ResultsApi.as_view(), name="review-results"
    ),
]
