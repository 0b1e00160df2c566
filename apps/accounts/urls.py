from django.contrib.auth import views as auth_views
from django.urls import path

from apps.accounts.login_throttle import login_throttled

urlpatterns = [
    path("login/", login_throttled(auth_views.LoginView.as_view(redirect_authenticated_user=True)), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
