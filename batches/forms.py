import re
import secrets
from collections.abc import Collection, Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import QuerySet
from django.forms.models import model_to_dict
from django.forms.utils import ErrorDict
from django.utils import timezone

from batches import exports
from batches.models import (
    EARLIEST_MOMENT,
    LATEST_MOMENT,
    MASS_LIMIT,
    MAX_ROW_ID,
    Facility,
    FeedstockType,
    ProductionBatch,
    SyncStatus,
)
from batches.remote import PAGE_SIZES, PageRequest
from batches.selectors import DEFAULT_SORT, Cursor, InvalidCursor, Sort
from portal.models import IsometricAccount

DUPLICATE_REFERENCE = "Another batch already has this supplier reference. Choose a different one."
REFERENCE_IN_OTHER_CASE = (
    "Another batch of this account has the supplier reference “{other}”, which differs from "
    "this one only in capital letters."
)
GENERATED_REFERENCE_HELP = (
    "Generated for this batch. You may replace it with your own unique reference."
)
DEFAULT_REMOTE_PAGE_SIZE = 25
# Isometric's cursors are short; anything much longer is not one.
MAX_CURSOR = 500
# Dates the list's filters accept: any day a batch can have, with room for a day's arithmetic.
DATE_BOUNDS = [
    MinValueValidator(EARLIEST_MOMENT.date()),
    MaxValueValidator(LATEST_MOMENT.date()),
]
# Crockford's base32 without look-alikes, so a generated reference can be read out over the phone.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class DateTimeLocalInput(forms.DateTimeInput):
    """The browser's date-time picker: Django's input is a text box, and the picker needs the
    value in its own format: without seconds, unless the time has some (a batch from
    Isometric may), so that saving the form unchanged changes nothing."""

    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, datetime) and value.second:
            return value.strftime("%Y-%m-%dT%H:%M:%S")
        return super().format_value(value)


class DateInput(forms.DateInput):
    """The browser's date picker (Django's input is a text box), with the value in ISO form."""

    input_type = "date"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%d")


def reference_taken(
    reference: str, account: IsometricAccount, exclude_pk: int | None = None
) -> bool:
    taken = ProductionBatch.objects.with_references(account.pk, [reference])
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    return taken.exists()


# What "copy from my last batch" fills in: all but what is each batch's own, its reference,
# display name and times.
COPIED_FIELDS = [
    "account",
    "facility",
    "feedstock_types",
    "mass_magnitude",
    "mass_unit",
    "mass_standard_deviation",
]


def initial_from_last(last: ProductionBatch | None, copy: bool) -> dict[str, Any]:
    """A new batch form's values from the user's last batch: its account and facility, and
    with `copy` the rest of COPIED_FIELDS too."""
    if last is None:
        return {}
    if not copy:
        return {"account": last.account_id, "facility": last.facility_id}
    values = model_to_dict(last, fields=COPIED_FIELDS)
    # As typed: "7.25", not the column's "7.250000".
    return {
        name: f"{value.normalize():f}" if isinstance(value, Decimal) else value
        for name, value in values.items()
    }


def generate_supplier_reference_id(started_at: datetime | None) -> str:
    """A fresh reference. Two alike in a day are one chance in a billion; the unique
    constraint refuses the second all the same (looking each up would scan every account's
    batches: the reference is indexed within an account)."""
    day = timezone.localtime(started_at) if started_at else timezone.localtime()
    token = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))
    return f"PB-{day:%Y%m%d}-{token}"


class AccountRowChoiceField(forms.ModelChoiceField):
    """A choice of one row by its id. An id no database column can hold is an invalid choice
    like any other (SQLite raises OverflowError for it, which Django lets through). With
    `show_account`, each choice names its account, for a user who works in several. With
    `rows`, the choices are those rows by id, read once for many forms instead of by each."""

    show_account = False
    rows: Mapping[int, Any] | None = None

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return None
        if not is_row_id(value) or (self.rows is not None and int(value) not in self.rows):
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice"
            )
        return super().to_python(value) if self.rows is None else self.rows[int(value)]

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj} ({obj.account})" if self.show_account else str(obj)


class AccountRowsChoiceField(forms.ModelMultipleChoiceField):
    show_account = False
    rows: Mapping[int, Any] | None = None

    def clean(self, value: Any) -> Any:
        pks = value if isinstance(value, list | tuple) else []
        for pk in pks:
            if not is_row_id(pk):
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": pk},
                )
        if self.rows is None or not pks:
            return super().clean(value)
        for pk in pks:
            if int(pk) not in self.rows:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": pk},
                )
        return [self.rows[int(pk)] for pk in dict.fromkeys(pks)]

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj} ({obj.account})" if self.show_account else str(obj)


@dataclass(frozen=True)
class AccountRows:
    """An account's facilities and feedstock types by id, and which of some references it has
    taken: read once for many batch forms (an import's rows) instead of by each form. The
    forms' rules are the same; only where they look these up changes."""

    facilities: Mapping[int, Facility]
    feedstock_types: Mapping[int, FeedstockType]
    taken_references: Container[str]
    # The account's references that read as one of these once folded (with_references_alike).
    alike_references: Collection[str]


def is_row_id(value: object) -> bool:
    text = str(value)
    return text.isascii() and text.isdecimal() and 0 < int(text) <= MAX_ROW_ID


class ProductionBatchForm(forms.ModelForm):
    """Enforces every rule Isometric enforces on a batch, so a saved batch is one it will accept,
    keeps every value within what both databases store, and asks the operator to confirm
    values that are possible but unusual."""

    mass_unit = forms.ChoiceField(label="Unit")
    confirm_unusual = forms.BooleanField(
        label="These values are right: save the batch as it is", required=False
    )

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
        field_classes = {
            "account": AccountRowChoiceField,
            "facility": AccountRowChoiceField,
            "feedstock_types": AccountRowsChoiceField,
        }
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
        self,
        *args: Any,
        accounts: QuerySet[IsometricAccount] | None = None,
        preloaded: AccountRows | None = None,
        **kwargs: Any,
    ) -> None:
        """`accounts`: those the user may record into (at least one). With one, batches go
        into it unasked, and the facilities and feedstock types offered are its own. (The admin
        scopes the choices itself and passes none.) `preloaded`: that one account's rows, when
        many forms are checked at once."""
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.unusual: list[str] = []
        self.preloaded = preloaded
        if "supplier_reference_id" in self.fields:
            self.fields["supplier_reference_id"].required = False
        if accounts is not None:
            self._offer_accounts(accounts)
        if preloaded is not None:
            self._choose_from_rows("facility", preloaded.facilities)
            self._choose_from_rows("feedstock_types", preloaded.feedstock_types)
        if self.instance.pk and "account" in self.fields:
            # Its id, and the batch deleted by a correction, are that organisation's.
            self.fields["account"].disabled = True
        if not self.is_bound and self.instance.sync_status == SyncStatus.REJECTED:
            self._show_rejection(self.instance.rejection_errors)
        units = settings.BATCH_MASS_UNITS
        if isinstance(unit_field := self.fields.get("mass_unit"), forms.ChoiceField):
            unit_field.choices = [(unit, unit) for unit in units]
        if not self.instance.pk:
            self.initial.setdefault("mass_unit", units[0])
        if "started_at" in self.fields:
            zone = timezone.get_current_timezone_name()
            self.fields["started_at"].help_text = f"Times are in {zone}."
        if not self.is_bound and not self.instance.pk and "supplier_reference_id" in self.fields:
            # Generated when the form is shown, not when it is saved: the same form posted
            # again (Back, a double click) carries the same reference, so it is recognised.
            self.initial.setdefault("supplier_reference_id", generate_supplier_reference_id(None))
            self.fields["supplier_reference_id"].help_text = GENERATED_REFERENCE_HELP

    def changes_batch(self) -> bool:
        """Whether saving changes the batch's values (confirming unusual ones changes none)."""
        return bool(set(self.changed_data) - {"confirm_unusual"})

    def needs_confirmed_correction(self, data: Mapping[str, Any]) -> bool:
        """Whether saving would correct a batch Isometric holds, and the operator has not yet
        seen and confirmed the differences (`data`: what the form was posted with)."""
        return (
            self.instance.is_correction
            and self.changes_batch()
            and "confirm_correction" not in data
        )

    def _offer_accounts(self, accounts: QuerySet[IsometricAccount]) -> None:
        if self.preloaded is None:
            self._choose_among(
                "facility", Facility.objects.filter(account__in=accounts).select_related("account")
            )
            self._choose_among(
                "feedstock_types",
                FeedstockType.objects.filter(account__in=accounts).select_related("account"),
            )
        choices = list(accounts[:2])
        account_field = self.fields["account"]
        assert isinstance(account_field, forms.ModelChoiceField)
        if len(choices) > 1:
            account_field.queryset = accounts
            account_field.required = True
            for name in ("facility", "feedstock_types"):
                field = self.fields[name]
                assert isinstance(field, AccountRowChoiceField | AccountRowsChoiceField)
                field.show_account = True
            return
        del self.fields["account"]
        if choices and self.instance.account_id is None:
            self.instance.account = choices[0]

    def _choose_among(self, name: str, queryset: QuerySet[Any]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = queryset

    def _choose_from_rows(self, name: str, rows: Mapping[int, Any]) -> None:
        field = self.fields[name]
        assert isinstance(field, AccountRowChoiceField | AccountRowsChoiceField)
        field.rows = rows

    def _show_rejection(self, errors: list[list[str | None]]) -> None:
        """Isometric's reasons for refusing the batch, at the fields they concern, before the
        operator has changed anything. (An unbound form has no errors of its own to clean.)"""
        self._errors = ErrorDict()
        for field, message in errors:
            name = field if field in self.fields else NON_FIELD_ERRORS
            sentence = refusal_sentence(message or "")
            self._errors.setdefault(name, self.error_class()).append(sentence)

    def clean_started_at(self) -> datetime:
        return _plausible_moment(self.cleaned_data["started_at"])

    def clean_ended_at(self) -> datetime:
        return _plausible_moment(self.cleaned_data["ended_at"])

    def clean_mass_magnitude(self) -> Decimal:
        mass: Decimal = self.cleaned_data["mass_magnitude"]
        if mass <= 0:
            raise forms.ValidationError("Mass must be greater than zero.")
        return _storable_mass(mass)

    def clean_mass_standard_deviation(self) -> Decimal | None:
        deviation: Decimal | None = self.cleaned_data["mass_standard_deviation"]
        if deviation is not None and deviation < 0:
            raise forms.ValidationError("Standard deviation cannot be negative.")
        return None if deviation is None else _storable_mass(deviation)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        account = cleaned.get("account") if "account" in self.fields else self.instance.account
        started_at, ended_at = cleaned.get("started_at"), cleaned.get("ended_at")
        if started_at and ended_at and ended_at <= started_at:
            self.add_error("ended_at", "Production must end after it started.")
        self._check_same_account(account, cleaned)
        reference = cleaned.get("supplier_reference_id")
        if reference and account and self._reference_taken(reference, account):
            self.add_error("supplier_reference_id", DUPLICATE_REFERENCE)
        elif not reference and "supplier_reference_id" not in self.errors:
            cleaned["supplier_reference_id"] = generate_supplier_reference_id(started_at)
        self.unusual = unusual_values(cleaned)
        if reference and account and "supplier_reference_id" not in self.errors:
            self.unusual += self._references_alike(reference, account)
        if self.unusual and not cleaned.get("confirm_unusual"):
            self.add_error(
                None, "Some values are unusual. Check them, then confirm them below to save."
            )
        return cleaned

    def _references_alike(self, reference: str, account: IsometricAccount) -> list[str]:
        """A new or changed reference that another batch of the account has in other case:
        easily a typing slip, though Isometric takes both."""
        if self.instance.pk and "supplier_reference_id" not in self.changed_data:
            return []
        if self.preloaded is not None:
            others: Iterable[str] = self.preloaded.alike_references
        else:
            alike = ProductionBatch.objects.with_references_alike(account.pk, [reference])
            if self.instance.pk:
                alike = alike.exclude(pk=self.instance.pk)
            others = alike.values_list("supplier_reference_id", flat=True)
        return [
            REFERENCE_IN_OTHER_CASE.format(other=other)
            for other in sorted(set(others))
            if other != reference and other.casefold() == reference.casefold()
        ]

    def _reference_taken(self, reference: str, account: IsometricAccount) -> bool:
        if self.preloaded is not None:
            return reference in self.preloaded.taken_references
        return reference_taken(reference, account, self.instance.pk)

    def _check_same_account(
        self, account: IsometricAccount | None, cleaned: dict[str, Any]
    ) -> None:
        """A batch's facility and feedstock types are its organisation's: Isometric refuses
        another's (and the choices may mix accounts when the user is in several)."""
        if account is None:
            return
        facility = cleaned.get("facility")
        if facility is not None and facility.account_id != account.pk:
            self.add_error("facility", f"This facility is not one of {account}'s.")
        feedstock_types = cleaned.get("feedstock_types") or []
        if any(feedstock.account_id != account.pk for feedstock in feedstock_types):
            self.add_error("feedstock_types", f"Choose feedstock types of {account} only.")


@dataclass(frozen=True)
class Difference:
    """A field a correction changes, its value before and after, for the template to show."""

    label: str
    old: Any
    new: Any
    is_moment: bool
    is_number: bool


def differences(form: ProductionBatchForm) -> list[Difference]:
    """What a valid edit form changes in its batch, as stored (the form's instance already
    holds the new values)."""
    stored = ProductionBatch.objects.prefetch_related("feedstock_types").get(pk=form.instance.pk)
    changes = []
    for name in form.changed_data:
        field = form.fields[name]
        if name == "confirm_unusual":
            continue
        if name == "feedstock_types":
            old: Any = ", ".join(str(each) for each in stored.feedstock_types.all())
            new: Any = ", ".join(str(each) for each in form.cleaned_data[name])
        else:
            old, new = getattr(stored, name), form.cleaned_data[name]
        changes.append(
            Difference(
                str(field.label),
                old,
                new,
                is_moment=isinstance(field, forms.DateTimeField),
                is_number=isinstance(field, forms.DecimalField),
            )
        )
    return changes


def unusual_values(cleaned: Mapping[str, Any]) -> list[str]:
    """What is possible but unusual in a batch, in words, for the operator to confirm."""
    unusual = []
    mass, unit = cleaned.get("mass_magnitude"), cleaned.get("mass_unit")
    deviation = cleaned.get("mass_standard_deviation")
    started_at, ended_at = cleaned.get("started_at"), cleaned.get("ended_at")
    limit = settings.BATCH_MASS_CONFIRM_ABOVE
    if mass is not None and mass_in_tonnes(mass, unit) > limit:
        unusual.append(f"The mass is over {limit:g} tonnes for one batch.")
    if mass is not None and deviation is not None and deviation > mass:
        unusual.append("The standard deviation is larger than the mass itself.")
    run_days = settings.BATCH_RUN_CONFIRM_DAYS
    if started_at and ended_at and ended_at - started_at > timedelta(days=run_days):
        unusual.append(f"Production ran for more than {run_days} days.")
    if started_at and timezone.localtime(started_at).year < settings.BATCH_EARLIEST_YEAR:
        unusual.append(f"Production started before {settings.BATCH_EARLIEST_YEAR}.")
    return unusual


# Units whose size is known, in tonnes; a mass in any other unit is compared as it is.
TONNES_PER_UNIT = {"tonne": Decimal(1), "t": Decimal(1), "kg": Decimal("0.001")}


def mass_in_tonnes(mass: Decimal, unit: str | None) -> Decimal:
    return mass * TONNES_PER_UNIT.get(unit or "", Decimal(1))


def rejection_by_label(batch: ProductionBatch) -> list[tuple[str, str]]:
    """Isometric's reasons for refusing the batch, as sentences, each under its form field's
    label."""
    fields = ProductionBatchForm.base_fields
    return [
        (str(fields[field].label) if field in fields else "Batch", refusal_sentence(message or ""))
        for field, message in batch.rejection_errors
    ]


# Isometric's reasons for refusing a value (pydantic's messages, as FastAPI words them, and
# Isometric's own), as sentences an operator reads at the field.
_REFUSALS = [
    (r"Field required", "Isometric needs a value here."),
    (r"String should have at least (\d+ characters?)", "Isometric needs at least {} here."),
    (r"String should have at most (\d+ characters?)", "Isometric takes at most {} here."),
    (r"List should have at least (\d+ items?)", "Isometric needs at least {} here."),
    (r"Input should be a valid (?:number|integer|decimal)", "Isometric needs a number here."),
    (r"Input should be a valid (?:datetime|date)", "Isometric needs a date and time here."),
    (
        r"Input should be (greater|less) than ((?:or equal to )?\S+)",
        "Isometric needs a value {} than {}.",
    ),
    (r"(Facility|Feedstock type) not found", "Isometric does not know this {}."),
]


def refusal_sentence(message: str) -> str:
    """One of Isometric's reasons as a sentence; a reason it words otherwise is quoted."""
    for pattern, sentence in _REFUSALS:
        if found := re.match(pattern, message):
            return sentence.format(*(group.lower() for group in found.groups()))
    reason = message.removeprefix("Value error, ").strip().rstrip(".") or "no reason given"
    return f"Isometric refused this: {reason}."


def _storable_mass(mass: Decimal) -> Decimal:
    if mass > MASS_LIMIT:
        raise forms.ValidationError(f"Enter at most {MASS_LIMIT:,.0f}.")
    return mass


def _plausible_moment(moment: datetime) -> datetime:
    if moment > timezone.now():
        raise forms.ValidationError("This time is in the future.")
    if moment < EARLIEST_MOMENT:
        raise forms.ValidationError(f"Enter a time after {EARLIEST_MOMENT.year}.")
    return moment


class ImportForm(forms.Form):
    """An upload of a spreadsheet of batches, into one of the user's accounts."""

    account = forms.ModelChoiceField(
        queryset=IsometricAccount.objects.none(), label="Isometric account"
    )
    file = forms.FileField(
        label="Spreadsheet",
        help_text="CSV (comma or semicolon separated) or Excel (.xlsx), as the template.",
    )
    confirm_unusual = forms.BooleanField(
        label="Unusual values in the file are right: import them as they are",
        required=False,
        help_text="Otherwise rows with unusual values (see the batch form) are left out, with why.",
    )

    def __init__(self, *args: Any, accounts: QuerySet[IsometricAccount], **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        account = self.fields["account"]
        assert isinstance(account, forms.ModelChoiceField)
        account.queryset = accounts
        choices = list(accounts[:2])
        # With one account, files go into it unasked.
        self.only_account = choices[0] if len(choices) == 1 else None
        if self.only_account:
            del self.fields["account"]

    def chosen_account(self) -> IsometricAccount:
        account = self.cleaned_data.get("account") or self.only_account
        assert isinstance(account, IsometricAccount)
        return account

    def clean_file(self) -> Any:
        file = self.cleaned_data["file"]
        limit = settings.BATCH_IMPORT_MAX_BYTES
        if file.size > limit:
            raise forms.ValidationError(
                f"The file is larger than {limit // 1_000_000} MB, the most the portal takes. "
                "Split it into smaller files."
            )
        return file


class VoidForm(forms.Form):
    reason = forms.CharField(
        label="Why is this batch void?",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept with the batch and shown in its history.",
    )


# The list's orders (batches.selectors.SORTS) as the operator reads them.
SORT_CHOICES = [
    ("-start", "Newest first"),
    ("start", "Oldest first"),
    ("-mass", "Heaviest first"),
    ("mass", "Lightest first"),
    ("facility", "Facility, A to Z"),
    ("-facility", "Facility, Z to A"),
    ("status", "Status, A to Z"),
    ("-status", "Status, Z to A"),
]


class BatchFilterForm(forms.Form):
    """The list's search, filters and page. Invalid values are reported at the field and
    ignored."""

    q = forms.CharField(label="Search", required=False, max_length=100, strip=True)
    facility = AccountRowChoiceField(
        queryset=Facility.objects.none(),
        required=False,
        empty_label="All facilities",
    )
    feedstock_type = AccountRowChoiceField(
        queryset=FeedstockType.objects.none(),
        required=False,
        empty_label="All feedstock types",
    )
    sync_status = forms.ChoiceField(
        label="Status",
        choices=[("", "Any status"), *SyncStatus.choices],
        required=False,
    )
    started_from = forms.DateField(
        label="Started from", required=False, widget=DateInput, validators=DATE_BOUNDS
    )
    started_to = forms.DateField(
        label="Started until", required=False, widget=DateInput, validators=DATE_BOUNDS
    )
    # The column headers' links choose it too (a phone shows no headers).
    sort = forms.ChoiceField(label="Sort", choices=SORT_CHOICES, required=False)
    # Where the page starts: not shown, carried by the pager's links.
    after = forms.CharField(required=False, widget=forms.HiddenInput)
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, data: Any, accounts: QuerySet[IsometricAccount]) -> None:
        super().__init__(data, label_suffix="")
        facility, feedstock_type = self.fields["facility"], self.fields["feedstock_type"]
        assert isinstance(facility, forms.ModelChoiceField)
        assert isinstance(feedstock_type, forms.ModelChoiceField)
        facility.queryset = Facility.objects.filter(account__in=accounts)
        feedstock_type.queryset = FeedstockType.objects.filter(account__in=accounts)

    def clean_after(self) -> Cursor | None:
        return self._cursor(self.cleaned_data["after"])

    def clean_before(self) -> Cursor | None:
        return self._cursor(self.cleaned_data["before"])

    def _cursor(self, token: str) -> Cursor | None:
        if not token:
            return None
        try:
            return self.chosen_sort().cursor(token)
        except InvalidCursor:
            raise forms.ValidationError("That page link is not valid any more.") from None

    def chosen_sort(self) -> Sort:
        """The order asked for (the newest first unless a valid one was)."""
        facility = self.fields["facility"]
        assert isinstance(facility, forms.ModelChoiceField)
        value = self.cleaned_data.get("sort") or DEFAULT_SORT.value
        return Sort.of(value, facility.queryset)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        started_from, started_to = cleaned.get("started_from"), cleaned.get("started_to")
        if started_from and started_to and started_to < started_from:
            self.add_error("started_to", "The end of the range is before its start.")
        return cleaned

    @property
    def stale_page(self) -> bool:
        return "after" in self.errors or "before" in self.errors

    def filters(self) -> dict[str, Any]:
        """The valid filters only; call after is_valid()."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if value not in (None, "") and name not in ("sort", "after", "before")
        }


_ASK_FOR_FORMAT = "Ask for format=csv or format=xlsx."


class BatchExportForm(BatchFilterForm):
    """The list's search and filters, invalid ones ignored as the list ignores them, and the
    file's format."""

    format = forms.ChoiceField(
        choices=exports.FORMATS,
        error_messages={"required": _ASK_FOR_FORMAT, "invalid_choice": _ASK_FOR_FORMAT},
    )


class BatchStatusesForm(forms.Form):
    """Which batches' status badges a list page asks for: their ids, comma-separated, at most
    a page's worth."""

    ids = forms.CharField(max_length=1000)

    def clean_ids(self) -> list[int]:
        ids = self.cleaned_data["ids"].split(",")
        if len(ids) > settings.BATCH_PAGE_SIZE:
            raise forms.ValidationError(
                f"Ask for at most {settings.BATCH_PAGE_SIZE} batches at a time."
            )
        if not all(is_row_id(pk) for pk in ids):
            raise forms.ValidationError("Give batch ids as whole numbers separated by commas.")
        return sorted({int(pk) for pk in ids})


class BulkRetryForm(forms.Form):
    """Failed batches to send again, chosen among the user's: any other id refuses the whole
    form. A chosen batch that is no longer failed is left as it is (see retry_batch)."""

    batches = AccountRowsChoiceField(
        queryset=ProductionBatch.objects.none(),
        error_messages={
            "required": "Choose the batches to retry.",
            "invalid_choice": "Batch %(value)s is not one of your accounts' batches.",
            "invalid_pk_value": "“%(pk)s” is not a batch.",
        },
    )

    def __init__(self, data: Any, batches: QuerySet[ProductionBatch]) -> None:
        super().__init__(data)
        field = self.fields["batches"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = batches


class RemoteBatchesForm(forms.Form):
    """What the "In Isometric" page shows: which account, how many a page, which reference.
    Invalid values are reported at the field and the defaults used instead."""

    account = AccountRowChoiceField(
        queryset=IsometricAccount.objects.none(),
        required=False,
        empty_label=None,
        label="Isometric account",
    )
    size = forms.TypedChoiceField(
        label="Per page",
        choices=[(size, size) for size in PAGE_SIZES],
        coerce=int,
        required=False,
    )
    ref = forms.CharField(label="Supplier reference", required=False, max_length=100, strip=True)
    order = forms.ChoiceField(
        label="Order",
        choices=[("newest", "Newest first"), ("oldest", "Oldest first")],
        required=False,
        help_text="By upload to Isometric, which has no other order.",
    )
    # Isometric's page markers, carried by the pager's links.
    after = forms.CharField(required=False, max_length=MAX_CURSOR, widget=forms.HiddenInput)
    before = forms.CharField(required=False, max_length=MAX_CURSOR, widget=forms.HiddenInput)

    def __init__(self, data: Any, accounts: list[IsometricAccount]) -> None:
        data = data.copy()
        data.setdefault("size", str(DEFAULT_REMOTE_PAGE_SIZE))
        data.setdefault("order", "newest")
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

    @property
    def stale_page(self) -> bool:
        return "after" in self.errors or "before" in self.errors

    def page_request(self) -> PageRequest:
        """Call after is_valid(): the page asked for, the first one when its link is broken.
        A link with both markers goes back, as the batch list does: Isometric refuses both."""
        before = self.cleaned_data.get("before", "")
        return PageRequest(
            size=self.cleaned_data.get("size") or DEFAULT_REMOTE_PAGE_SIZE,
            after="" if before else self.cleaned_data.get("after", ""),
            before=before,
            supplier_reference_id=self.cleaned_data.get("ref", ""),
            newest_first=self.cleaned_data.get("order") != "oldest",
        )
