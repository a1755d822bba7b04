from django.urls import path

from batches import dashboard_views, import_views, views

app_name = "batches"
urlpatterns = [
    path("", views.batch_list, name="list"),
    path("new/", views.batch_create, name="create"),
    path("isometric/", views.remote_batch_list, name="remote"),
    path("statuses/", views.batch_statuses, name="statuses"),
    path("export/", views.batch_export, name="export"),
    path("<int:pk>/", views.batch_detail, name="detail"),
    path("<int:pk>/edit/", views.batch_edit, name="edit"),
    path("<int:pk>/void/", views.batch_void, name="void"),
    path("<int:pk>/retry/", views.batch_retry, name="retry"),
    path("refresh/", views.refresh_from_isometric, name="refresh"),
    path("retry/", dashboard_views.batch_retry_many, name="retry_many"),
    path("import/", import_views.import_upload, name="imports"),
    path("import/template/", import_views.import_template, name="import_template"),
    path("import/<int:pk>/", import_views.import_detail, name="import"),
    path("import/<int:pk>/start/", import_views.import_start, name="import_start"),
    path("import/<int:pk>/rejected/", import_views.import_rejected, name="import_rejected"),
]
