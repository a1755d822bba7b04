from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import metrics, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.export, name="metrics"),
    path("preferences/", views.preferences, name="preferences"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("batches/", include("batches.urls")),
    path("admin/", admin.site.urls),
]
