from django.urls import path

from batches import views

app_name = "batches"
urlpatterns = [
    path("", views.batch_list, name="list"),
    path("new/", views.batch_create, name="create"),
    path("<int:pk>/", views.batch_detail, name="detail"),
    path("<int:pk>/edit/", views.batch_edit, name="edit"),
]
