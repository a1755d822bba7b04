from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from batches.dashboard_views import dashboard
from portal import metrics, second_factor_views, views

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.export, name="metrics"),
    path("preferences/", views.preferences, name="preferences"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("second-factor/", second_factor_views.verify, name="second_factor"),
    path("second-factor/setup/", second_factor_views.setup, name="second_factor_setup"),
    path(
        "second-factor/recovery-codes/",
        second_factor_views.recovery_codes,
        name="second_factor_recovery_codes",
    ),
    path("batches/", include("batches.urls")),
    path("notifications/", include("notifications.urls")),
    path("admin/", admin.site.urls),
]
