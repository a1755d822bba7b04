from django.contrib import admin
from django.http import HttpRequest

from batches.forms import ProductionBatchForm
from batches.models import Facility, FeedstockType, ProductionBatch


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

    def has_change_permission(
        self, request: HttpRequest, obj: ProductionBatch | None = None
    ) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.is_editable)
