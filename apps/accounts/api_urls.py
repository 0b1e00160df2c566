from django.urls import path

from apps.accounts import apis

urlpatterns = [
    path("auth/token/", apis.TokenObtainApi.as_view(), name="token-obtain"),
    path("me/", apis.MeApi.as_view(), name="me"),
]
