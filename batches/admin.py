from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import floatformat

from batches.forms import DateTimeLocalInput, ProductionBatchForm
from batches.history import Via, changes_via
from batches.models import Facility, FeedstockType, ProductionBatch
from batches.services import save_batch
from portal.accounts import accounts_of


class AccountScopedAdmin(admin.ModelAdmin):
    """Rows of the user's Isometric accounts only, and only their accounts, facilities and
    feedstock types to choose from: a staff member of one organisation never reads or writes
    another's."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).filter(account__in=accounts_of(request.user))

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        # PostgreSQL refuses a NUL in any text it is given, so a search or filter with one is a
        # bad lookup, which the admin answers by going back to the whole list.
        if any("\x00" in value for _, values in request.GET.lists() for value in values):
            raise IncorrectLookupParameters("a query parameter contains NUL")
        return super().get_changelist_instance(request)

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField | None:
        if db_field.name == "account":
            kwargs["queryset"] = accounts_of(request.user)
        elif db_field.related_model in (Facility, FeedstockType):
            kwargs["queryset"] = _of_accounts(db_field.related_model, request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelMultipleChoiceField | None:
        if db_field.related_model in (Facility, FeedstockType):
            kwargs["queryset"] = _of_accounts(db_field.related_model, request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


def _of_accounts(model: type[models.Model], request: HttpRequest) -> QuerySet[Any]:
    return model._default_manager.filter(account__in=accounts_of(request.user))


@admin.register(Facility)
class FacilityAdmin(AccountScopedAdmin):
    list_display = ["name", "isometric_id", "account"]
    list_filter = [("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "isometric_id"]


@admin.register(FeedstockType)
class FeedstockTypeAdmin(AccountScopedAdmin):
    list_display = ["name", "isometric_id", "account"]
    list_filter = [("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "isometric_id"]


@admin.register(ProductionBatch)
class ProductionBatchAdmin(AccountScopedAdmin):
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
        "mass",
        "sync_status",
    ]
    # Only the facilities and feedstock types of the batches the user may see.
    list_filter = [
        "sync_status",
        ("account", admin.RelatedOnlyFieldListFilter),
        ("facility", admin.RelatedOnlyFieldListFilter),
        ("feedstock_types", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["facility"]
    search_fields = ["display_name", "supplier_reference_id", "remote_id"]
    filter_horizontal = ["feedstock_types"]
    readonly_fields = [
        "remote_id",
        "uploaded_at",
        "sync_status",
        "sync_attempts",
        "failing_since",
        "next_attempt_at",
        "last_error",
        "created_by",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="Mass", ordering="mass_magnitude")
    def mass(self, batch: ProductionBatch) -> str:
        """As the portal's list shows it: up to three decimals, and the unit."""
        return f"{floatformat(batch.mass_magnitude, -3)} {batch.mass_unit}"

    def save_model(
        self, request: HttpRequest, obj: ProductionBatch, form: ProductionBatchForm, change: bool
    ) -> None:
        # As from the portal's own form: a changed batch is due to be sent (again). It saves
        # the feedstock types too, so save_related's second save of them changes nothing.
        with changes_via(Via.ADMIN):
            save_batch(form, request.user)

    def has_change_permission(
        self, request: HttpRequest, obj: ProductionBatch | None = None
    ) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.is_editable)
