import secrets
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.db.models import QuerySet
from django.forms.utils import ErrorDict
from django.utils import timezone

from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
from batches.remote import PAGE_SIZES, PageRequest
from portal.models import IsometricAccount

DUPLICATE_REFERENCE = "Another batch already has this supplier reference. Choose a different one."
DEFAULT_REMOTE_PAGE_SIZE = 25
# Isometric's cursors are short; anything much longer is not one.
MAX_CURSOR = 500
# Crockford's base32 without look-alikes, so a generated reference can be read out over the phone.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%d")


class PlainSelect(forms.Select):
    """A select with neither option groups nor attributes on its options, in one template.
    Django's own includes two templates for every option, which showed in the list's render time.
    """

    template_name = "batches/widgets/plain_select.html"


def reference_taken(
    reference: str, account: IsometricAccount | None, exclude_pk: int | None = None
) -> bool:
    taken = ProductionBatch.objects.filter(account=account, supplier_reference_id=reference)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    return taken.exists()


def generate_supplier_reference_id(started_at: datetime | None) -> str:
    day = timezone.localtime(started_at) if started_at else timezone.localtime()
    while True:
        token = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))
        reference = f"PB-{day:%Y%m%d}-{token}"
        if not ProductionBatch.objects.filter(supplier_reference_id=reference).exists():
            return reference


class ProductionBatchForm(forms.ModelForm):
    """Enforces every rule Isometric enforces on a batch, so a saved batch is one it will accept."""

    mass_unit = forms.ChoiceField(label="Unit")

    class Meta:
        model = ProductionBatch
        fields = [
            "account",
            "facility",
            "feedstock_types",
            "supplier_reference_id",
            "display_name",
            "started_at",
            "ended_at",
            "mass_magnitude",
            "mass_unit",
            "mass_standard_deviation",
        ]
        labels = {
            "account": "Isometric account",
            "supplier_reference_id": "Supplier reference",
            "mass_magnitude": "Mass",
            "mass_standard_deviation": "Standard deviation",
            "started_at": "Production started",
            "ended_at": "Production ended",
        }
        help_texts = {
            "supplier_reference_id": "Your own unique reference. Leave blank to get one generated.",
            "display_name": "Leave blank and Isometric names it after the facility.",
            "started_at": "In the portal's time zone.",
        }
        widgets = {
            "feedstock_types": forms.CheckboxSelectMultiple,
            "started_at": DateTimeLocalInput,
            "ended_at": DateTimeLocalInput,
        }
        error_messages = {
            "feedstock_types": {"required": "Choose at least one feedstock type."},
        }

    def __init__(
        self, *args: Any, accounts: QuerySet[IsometricAccount] | None = None, **kwargs: Any
    ) -> None:
        """`accounts`: those the user may record into. With one, batches go into it unasked;
        with none, they are kept here until the portal has an account for them."""
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["supplier_reference_id"].required = False
        if accounts is not None:
            self._offer_accounts(accounts)
        if not self.is_bound and self.instance.sync_status == SyncStatus.REJECTED:
            self._show_rejection(self.instance.rejection_errors)
        units = settings.BATCH_MASS_UNITS
        unit_field = self.fields["mass_unit"]
        assert isinstance(unit_field, forms.ChoiceField)
        unit_field.choices = [(unit, unit) for unit in units]
        if not self.instance.pk:
            self.initial.setdefault("mass_unit", units[0])

    def _offer_accounts(self, accounts: QuerySet[IsometricAccount]) -> None:
        choices = list(accounts[:2])
        if len(choices) > 1:
            account_field = self.fields["account"]
            assert isinstance(account_field, forms.ModelChoiceField)
            account_field.queryset = accounts
            account_field.required = True
            return
        del self.fields["account"]
        if choices and self.instance.account_id is None:
            self.instance.account = choices[0]

    def _show_rejection(self, errors: list[list[str | None]]) -> None:
        """Isometric's reasons for refusing the batch, at the fields they concern, before the
        operator has changed anything. (An unbound form has no errors of its own to clean.)"""
        self._errors = ErrorDict()
        for field, message in errors:
            name = field if field in self.fields else NON_FIELD_ERRORS
            self._errors.setdefault(name, self.error_class()).append(f"Isometric: {message}")

    def clean_started_at(self) -> datetime:
        return _not_in_future(self.cleaned_data["started_at"])

    def clean_ended_at(self) -> datetime:
        return _not_in_future(self.cleaned_data["ended_at"])

    def clean_mass_magnitude(self) -> Decimal:
        mass: Decimal = self.cleaned_data["mass_magnitude"]
        if mass <= 0:
            raise forms.ValidationError("Mass must be greater than zero.")
        return mass

    def clean_mass_standard_deviation(self) -> Decimal | None:
        deviation: Decimal | None = self.cleaned_data["mass_standard_deviation"]
        if deviation is not None and deviation < 0:
            raise forms.ValidationError("Standard deviation cannot be negative.")
        return deviation

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        started_at, ended_at = cleaned.get("started_at"), cleaned.get("ended_at")
        if started_at and ended_at and ended_at <= started_at:
            self.add_error("ended_at", "Production must end after it started.")
        reference = cleaned.get("supplier_reference_id")
        if reference and self._reference_taken(reference, cleaned.get("account")):
            self.add_error("supplier_reference_id", DUPLICATE_REFERENCE)
        elif not reference and "supplier_reference_id" not in self.errors:
            cleaned["supplier_reference_id"] = generate_supplier_reference_id(started_at)
        return cleaned

    def _reference_taken(self, reference: str, account: IsometricAccount | None) -> bool:
        """References are unique within an account (the model's constraint), which the form
        does not check by itself when the account is not one of its fields."""
        if "account" not in self.fields:
            account = self.instance.account
        return reference_taken(reference, account, exclude_pk=self.instance.pk)


def rejection_by_label(batch: ProductionBatch) -> list[tuple[str, str]]:
    """Isometric's reasons for refusing the batch, each under its form field's label."""
    fields = ProductionBatchForm.base_fields
    return [
        (str(fields[field].label) if field in fields else "Batch", message or "")
        for field, message in batch.rejection_errors
    ]


def _not_in_future(moment: datetime) -> datetime:
    if moment > timezone.now():
        raise forms.ValidationError("This time is in the future.")
    return moment


class BatchFilterForm(forms.Form):
    """The list's search and filters. Invalid values are reported at the field and ignored."""

    q = forms.CharField(label="Search", required=False, max_length=100, strip=True)
    facility = forms.ModelChoiceField(
        queryset=Facility.objects.all(),
        to_field_name="isometric_id",
        required=False,
        empty_label="All facilities",
        widget=PlainSelect,
    )
    feedstock_type = forms.ModelChoiceField(
        queryset=FeedstockType.objects.all(),
        to_field_name="isometric_id",
        required=False,
        empty_label="All feedstock types",
        widget=PlainSelect,
    )
    sync_status = forms.ChoiceField(
        label="Status",
        choices=[("", "Any status"), *SyncStatus.choices],
        required=False,
        widget=PlainSelect,
    )
    started_from = forms.DateField(label="Started from", required=False, widget=DateInput)
    started_to = forms.DateField(label="Started until", required=False, widget=DateInput)

    def __init__(self, data: Any) -> None:
        super().__init__(data, label_suffix="")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        started_from, started_to = cleaned.get("started_from"), cleaned.get("started_to")
        if started_from and started_to and started_to < started_from:
            self.add_error("started_to", "The end of the range is before its start.")
        return cleaned

    def filters(self) -> dict[str, Any]:
        """The valid filters only; call after is_valid()."""
        return {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}


class RemoteBatchesForm(forms.Form):
    """What the "In Isometric" page shows: which account, how many a page, which reference.
    Invalid values are reported at the field and the defaults used instead."""

    account = forms.ModelChoiceField(
        queryset=IsometricAccount.objects.none(),
        required=False,
        empty_label=None,
        label="Isometric account",
        widget=PlainSelect,
    )
    size = forms.TypedChoiceField(
        label="Per page",
        choices=[(size, size) for size in PAGE_SIZES],
        coerce=int,
        required=False,
        widget=PlainSelect,
    )
    ref = forms.CharField(label="Supplier reference", required=False, max_length=100, strip=True)

    def __init__(self, data: Any, accounts: list[IsometricAccount]) -> None:
        data = data.copy()
        data.setdefault("size", str(DEFAULT_REMOTE_PAGE_SIZE))
        super().__init__(data, label_suffix="")
        self.accounts = accounts
        account_field = self.fields["account"]
        assert isinstance(account_field, forms.ModelChoiceField)
        if len(accounts) > 1:
            account_field.queryset = IsometricAccount.objects.filter(
                pk__in=[account.pk for account in accounts]
            )
        else:
            del self.fields["account"]

    def chosen_account(self) -> IsometricAccount | None:
        """Call after is_valid(): the chosen account, else the user's first (or none)."""
        chosen = self.cleaned_data.get("account")
        return chosen or (self.accounts[0] if self.accounts else None)

    def page_request(self, cursors: Mapping[str, str]) -> PageRequest:
        return PageRequest(
            size=self.cleaned_data.get("size") or DEFAULT_REMOTE_PAGE_SIZE,
            after=cursors.get("after", "")[:MAX_CURSOR],
            before=cursors.get("before", "")[:MAX_CURSOR],
            supplier_reference_id=self.cleaned_data.get("ref", ""),
        )
