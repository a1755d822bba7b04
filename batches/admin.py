from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from batches.forms import DateTimeLocalInput, ProductionBatchForm
from batches.models import Facility, FeedstockType, ProductionBatch
from batches.selectors import visible_batches
from batches.services import save_batch


@admin.register(Facility)
class FacilityAdmin(admin.ModelAdmin):
    list_display = ["name", "isometric_id"]
    search_fields = ["name", "isometric_id"]


@admin.register(FeedstockType)
class FeedstockTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "isometric_id"]
    search_fields = ["name", "isometric_id"]


@admin.register(ProductionBatch)
class ProductionBatchAdmin(admin.ModelAdmin):
    form = ProductionBatchForm
    # The form's own date-time inputs, not the admin's split date and time fields.
    formfield_overrides = {
        models.DateTimeField: {"form_class": forms.DateTimeField, "widget": DateTimeLocalInput}
    }
    list_display = [
        "supplier_reference_id",
        "display_name",
        "facility",
        "started_at",
        "mass_magnitude",
        "mass_unit",
        "sync_status",
    ]
    list_filter = ["sync_status", "facility", "feedstock_types"]
    list_select_related = ["facility"]
    search_fields = ["display_name", "supplier_reference_id", "remote_id"]
    filter_horizontal = ["feedstock_types"]
    readonly_fields = [
        "remote_id",
        "uploaded_at",
        "sync_status",
        "sync_attempts",
        "next_attempt_at",
        "last_error",
        "created_by",
        "created_at",
        "updated_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProductionBatch]:
        return visible_batches(request.user)

    def save_model(
        self, request: HttpRequest, obj: ProductionBatch, form: ProductionBatchForm, change: bool
    ) -> None:
        # As from the portal's own form: a changed batch is due to be sent (again).
        save_batch(form, request.user)

    def has_change_permission(
        self, request: HttpRequest, obj: ProductionBatch | None = None
    ) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.is_editable)
