"""Bulk import: an uploaded spreadsheet, checked row by row by the batch form's own rules, then
its new rows saved as batches due for sync. The worker does both (a file may hold 50,000 rows);
the operator watches the progress and decides in between.

Rows without a supplier reference get one made from the row's own values, so the same row
uploaded again (the same file, or a corrected one) is recognised as already in the portal.
"""

import hashlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import batched
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from batches.forms import DUPLICATE_REFERENCE, AccountRows, ProductionBatchForm
from batches.history import Via, log_batch_changes
from batches.import_files import (
    Row,
    TableStream,
    UnreadableFile,
    iter_table,
    normalise_decimal,
    normalise_moment,
)
from batches.models import (
    BatchImport,
    BatchImportRow,
    Facility,
    FeedstockType,
    ImportStatus,
    ProductionBatch,
    RejectedRow,
)
from batches.services import has_values
from batches.spreadsheet import FEEDSTOCK_SEPARATOR, TEMPLATE_COLUMNS
from portal.models import IsometricAccount

# Rows checked or saved between two writes of the progress (and renewals of the lease).
CHUNK = 500
# How long a worker holds an import it works on without showing progress.
LEASE = timedelta(minutes=5)
FeedstockLink = ProductionBatch.feedstock_types.through


def upload(
    account: IsometricAccount, user: User, file: UploadedFile, confirm_unusual: bool
) -> BatchImport:
    """Keep the file for the worker to check."""
    return BatchImport.objects.create(
        account=account,
        created_by=user,
        file_name=(file.name or "upload")[:255],
        content=file.read(),
        confirm_unusual=confirm_unusual,
        time_zone=timezone.get_current_timezone_name(),
    )


def process_due() -> bool:
    """Check or import the oldest import waiting for a worker; whether there was one."""
    batch_import = _claim()
    if batch_import is None:
        return False
    # The batch form reads the file's times as the uploader's own form would.
    with timezone.override(batch_import.time_zone or None):
        if batch_import.status == ImportStatus.CHECKING:
            check(batch_import)
        else:
            import_rows(batch_import)
    return True


def _claim() -> BatchImport | None:
    """The oldest import to check or import that no worker holds, held now by this one."""
    now = timezone.now()
    waiting = BatchImport.objects.filter(
        Q(claimed_until=None) | Q(claimed_until__lt=now),
        status__in=(ImportStatus.CHECKING, ImportStatus.IMPORTING),
    ).order_by("created_at")
    for candidate in waiting.only("pk", "claimed_until", "status")[:5]:
        taken = BatchImport.objects.filter(
            pk=candidate.pk, status=candidate.status, claimed_until=candidate.claimed_until
        ).update(claimed_until=now + LEASE)
        if taken:
            return BatchImport.objects.select_related("account", "created_by").get(pk=candidate.pk)
    return None


def start_import(batch_import: BatchImport) -> bool:
    """Have the worker save the checked file's new rows; False unless it is checked."""
    return bool(
        BatchImport.objects.filter(pk=batch_import.pk, status=ImportStatus.CHECKED).update(
            status=ImportStatus.IMPORTING, claimed_until=None, rows_done=0
        )
    )


@dataclass
class _Tally:
    new: int = 0
    same: int = 0
    conflicting: int = 0
    invalid: int = 0

    def add(self, outcome: "Outcome") -> None:
        setattr(self, outcome.kind, getattr(self, outcome.kind) + 1)


def check(batch_import: BatchImport) -> None:
    """Check every row with the batch form and count what an import would do. The new rows are
    kept as the form cleaned them, the others with their reasons."""
    rows = _rows(batch_import)
    if rows is None:
        return
    # What a worker that died part-way through a check left.
    batch_import.new_rows.all().delete()
    batch_import.rejected_rows.all().delete()
    checker = RowChecker(batch_import)
    tally = _Tally()
    for chunk in batched(rows, CHUNK):
        new, rejected = [], []
        for row, outcome in zip(chunk, checker.check(chunk), strict=True):
            tally.add(outcome)
            if outcome.new_form is not None:
                new.append(
                    BatchImportRow(
                        batch_import=batch_import,
                        number=row.number,
                        values=_cleaned(outcome.new_form),
                    )
                )
            elif outcome.kind in ("conflicting", "invalid"):
                rejected.append(outcome.rejected_row(batch_import, row))
        BatchImportRow.objects.bulk_create(new)
        RejectedRow.objects.bulk_create(rejected)
        _progress(batch_import, len(chunk))
    BatchImport.objects.filter(pk=batch_import.pk).update(
        status=ImportStatus.CHECKED,
        claimed_until=None,
        new=tally.new,
        same=tally.same,
        conflicting=tally.conflicting,
        invalid=tally.invalid,
        finished_at=timezone.now(),
    )


def import_rows(batch_import: BatchImport) -> None:
    """Save the rows the check found new as batches due for sync, a chunk per transaction. A
    row whose reference is in the portal by now (another upload, a worker that died part-way
    through this one), or whose facility or feedstock type is gone, is left out."""
    BatchImport.objects.filter(pk=batch_import.pk).update(rows_total=batch_import.new, rows_done=0)
    batch_import.rows_done = 0
    after = 0
    while chunk := list(batch_import.new_rows.filter(number__gt=after)[:CHUNK]):
        _save(batch_import, chunk)
        _progress(batch_import, len(chunk))
        after = chunk[-1].number
    batch_import.new_rows.all().delete()
    BatchImport.objects.filter(pk=batch_import.pk).update(
        status=ImportStatus.IMPORTED, claimed_until=None, content=b"", finished_at=timezone.now()
    )


def _cleaned(form: ProductionBatchForm) -> dict[str, Any]:
    """The batch the form would save, as its model's field values."""
    batch = form.save(commit=False)
    return {
        **{name: getattr(batch, name) for name in SAVED_FIELDS},
        "feedstock_types": sorted(
            feedstock.pk for feedstock in form.cleaned_data["feedstock_types"]
        ),
    }


# The columns of a batch that an import fills (the rest take their defaults: due for sync now).
SAVED_FIELDS = (
    "account_id",
    "facility_id",
    "supplier_reference_id",
    "display_name",
    "kind",
    "started_at",
    "ended_at",
    "mass_magnitude",
    "mass_unit",
    "mass_standard_deviation",
)


def _rows(batch_import: BatchImport) -> Iterator[Row] | None:
    """The file's rows, read as they are needed, or None once it is marked unreadable. The file
    is read through once first: it counts the rows for the progress bar, and a file that turns
    out unreadable part-way (too many rows, a damaged sheet) is refused before anything is
    saved."""
    try:
        total = sum(1 for _ in _read(batch_import).rows)
    except UnreadableFile as exc:
        BatchImport.objects.filter(pk=batch_import.pk).update(
            status=ImportStatus.UNREADABLE,
            claimed_until=None,
            message=str(exc),
            content=b"",
            finished_at=timezone.now(),
        )
        return None
    BatchImport.objects.filter(pk=batch_import.pk).update(rows_total=total, rows_done=0)
    batch_import.rows_done = 0
    return _read(batch_import).rows


def _read(batch_import: BatchImport) -> TableStream:
    return iter_table(io.BytesIO(bytes(batch_import.content)), batch_import.file_name)


def _progress(batch_import: BatchImport, rows: int) -> None:
    batch_import.rows_done += rows
    BatchImport.objects.filter(pk=batch_import.pk).update(
        rows_done=batch_import.rows_done, claimed_until=timezone.now() + LEASE
    )


@transaction.atomic
def _save(batch_import: BatchImport, rows: list[BatchImportRow]) -> None:
    """Save the rows as batches, and count them on the import, in one transaction: a worker
    that dies leaves each chunk saved and counted, or neither."""
    references = [row.values["supplier_reference_id"] for row in rows]
    taken = set(
        ProductionBatch.objects.with_references(batch_import.account_id, references).values_list(
            "supplier_reference_id", flat=True
        )
    )
    account = batch_import.account
    facilities = set(account.facilities.values_list("pk", flat=True))
    feedstock_types = set(account.feedstock_types.values_list("pk", flat=True))
    # Left out: a reference in the portal by now, or a facility or feedstock type an admin
    # removed since the check.
    rows = [
        row
        for row in rows
        if row.values["supplier_reference_id"] not in taken
        and row.values["facility_id"] in facilities
        and feedstock_types.issuperset(row.values["feedstock_types"])
    ]
    created = ProductionBatch.objects.bulk_create(
        _batch(row.values, batch_import.created_by_id) for row in rows
    )
    links = {
        batch.pk: set(row.values["feedstock_types"])
        for batch, row in zip(created, rows, strict=True)
    }
    FeedstockLink.objects.bulk_create(
        FeedstockLink(productionbatch_id=pk, feedstocktype_id=feedstock_pk)
        for pk, feedstock_pks in links.items()
        for feedstock_pk in feedstock_pks
    )
    log_batch_changes(
        [(batch, {"feedstock_types": ((), links[batch.pk])}) for batch in created],
        Via.IMPORT,
        created=True,
        actor=batch_import.created_by,
    )
    BatchImport.objects.filter(pk=batch_import.pk).update(imported=F("imported") + len(created))


def _batch(values: dict[str, Any], created_by_id: int | None) -> ProductionBatch:
    """The batch of a row kept by the check (its JSON holds times and decimals as text)."""
    deviation = values["mass_standard_deviation"]
    return ProductionBatch(
        account_id=values["account_id"],
        facility_id=values["facility_id"],
        supplier_reference_id=values["supplier_reference_id"],
        display_name=values["display_name"],
        kind=values["kind"],
        started_at=datetime.fromisoformat(values["started_at"]),
        ended_at=datetime.fromisoformat(values["ended_at"]),
        mass_magnitude=Decimal(values["mass_magnitude"]),
        mass_unit=values["mass_unit"],
        mass_standard_deviation=None if deviation is None else Decimal(deviation),
        created_by_id=created_by_id,
    )


@dataclass(frozen=True)
class Outcome:
    kind: str  # "new", "same" (already in the portal), "conflicting", "invalid"
    errors: dict[str, list[str]]
    new_form: ProductionBatchForm | None = None

    def rejected_row(self, batch_import: BatchImport, row: Row) -> RejectedRow:
        """For the preview and the download: the errors by column header ("" for the row)."""
        errors: dict[str, list[str]] = {}
        for key, messages in self.errors.items():
            errors.setdefault(_HEADERS.get(key, ""), []).extend(messages)
        return RejectedRow(
            batch_import=batch_import,
            number=row.number,
            conflicting=self.kind == "conflicting",
            values=row.values,
            errors=errors,
        )


class RowChecker:
    """The batch form's verdict on each row of one import, in the import's account."""

    def __init__(self, batch_import: BatchImport) -> None:
        account = batch_import.account
        # Evaluated once: every row's form offers the same account without asking again.
        self.accounts = IsometricAccount.objects.filter(pk=account.pk)
        list(self.accounts)
        self.confirm_unusual = batch_import.confirm_unusual
        facilities = list(account.facilities.all())
        feedstock_types = list(account.feedstock_types.all())
        self.facility_rows = {facility.pk: facility for facility in facilities}
        self.feedstock_rows = {feedstock.pk: feedstock for feedstock in feedstock_types}
        self.facilities = _by_name_or_id(facilities)
        self.feedstock_types = _by_name_or_id(feedstock_types)
        self.default_unit = settings.BATCH_MASS_UNITS[0]
        self.references_seen: set[str] = set()
        self.twins: dict[str, int] = {}

    def check(self, rows: Sequence[Row]) -> list[Outcome]:
        """The rows' outcomes, in order. The batches already holding their references are read
        for all of them at once, and so are the account's choices, rather than by each form."""
        data = [self.form_data(row) for row in rows]
        references = [each["supplier_reference_id"] for each in data]
        account_id = self.accounts[0].pk
        existing = {
            batch.supplier_reference_id: batch
            for batch in ProductionBatch.objects.with_references(
                account_id, references
            ).prefetch_related("feedstock_types")
        }
        alike = ProductionBatch.objects.with_references_alike(account_id, references)
        preloaded = AccountRows(
            self.facility_rows,
            self.feedstock_rows,
            existing.keys(),
            list(alike.values_list("supplier_reference_id", flat=True)),
        )
        return [self._check(each, preloaded, existing) for each in data]

    def _check(
        self,
        data: dict[str, Any],
        preloaded: AccountRows,
        existing: dict[str, ProductionBatch],
    ) -> Outcome:
        reference = data["supplier_reference_id"]
        if reference.lower() in self.references_seen:
            return Outcome("invalid", {"supplier_reference_id": [_TWICE]})
        self.references_seen.add(reference.lower())
        form = ProductionBatchForm(data, accounts=self.accounts, preloaded=preloaded)
        if form.is_valid():
            return Outcome("new", {}, new_form=form)
        errors = {
            name: [str(message) for message in messages] for name, messages in form.errors.items()
        }
        if errors != {"supplier_reference_id": [DUPLICATE_REFERENCE]}:
            if form.unusual and not self.confirm_unusual:
                errors.setdefault(NON_FIELD_ERRORS, []).extend(form.unusual)
            return Outcome("invalid", errors)
        if has_values(existing[reference], form.cleaned_data):
            return Outcome("same", {})
        return Outcome("conflicting", {"supplier_reference_id": [_CONFLICTING]})

    def form_data(self, row: Row) -> dict[str, Any]:
        """The row as the batch form takes it: names to ids, numbers and times to the form's
        own notation, a reference when it has none."""
        values = row.values
        feedstocks = [
            self.feedstock_types.get(name.strip().lower(), name.strip())
            for name in values.get("feedstock_types", "")
            .replace(",", FEEDSTOCK_SEPARATOR)
            .split(FEEDSTOCK_SEPARATOR)
            if name.strip()
        ]
        facility = values.get("facility", "")
        return {
            "supplier_reference_id": values.get("supplier_reference_id") or self._reference(row),
            "display_name": values.get("display_name", ""),
            "facility": self.facilities.get(facility.lower(), facility),
            "feedstock_types": feedstocks,
            "started_at": normalise_moment(values.get("started_at", "")),
            "ended_at": normalise_moment(values.get("ended_at", "")),
            "mass_magnitude": normalise_decimal(values.get("mass_magnitude", "")),
            "mass_unit": values.get("mass_unit") or self.default_unit,
            "mass_standard_deviation": normalise_decimal(values.get("mass_standard_deviation", "")),
            "confirm_unusual": "on" if self.confirm_unusual else "",
        }

    def _reference(self, row: Row) -> str:
        """A reference made from the row's values (and how many identical rows came before it
        in the file), the same whenever the row is uploaded again."""
        content = "\x1f".join(row.values.get(column.key, "") for column in TEMPLATE_COLUMNS)
        digest = hashlib.sha256(content.encode()).hexdigest()[:12].upper()
        count = self.twins.get(digest, 0) + 1
        self.twins[digest] = count
        return f"IMP-{digest}" if count == 1 else f"IMP-{digest}-{count}"


def _by_name_or_id(rows: list[Facility] | list[FeedstockType]) -> dict[str, int]:
    """A facility's or feedstock type's pk by its lower-cased name and by its Isometric id (ids
    win over a name that happens to equal one)."""
    found: dict[str, int] = {}
    for row in rows:
        found.setdefault(row.name.strip().lower(), row.pk)
    for row in rows:
        found[row.isometric_id.lower()] = row.pk
    return found


def rejected_rows(batch_import: BatchImport) -> Iterator[list[str]]:
    """The rows not imported, as the file had them (the template's columns), each with its
    reasons in a last column."""
    for rejected in batch_import.rejected_rows.iterator(chunk_size=CHUNK):
        reasons = "; ".join(
            f"{header or 'The row'}: {message}"
            for header, messages in rejected.errors.items()
            for message in messages
        )
        yield [*(rejected.values.get(column.key, "") for column in TEMPLATE_COLUMNS), reasons]


def example_row(account: IsometricAccount) -> list[Any]:
    """The template's example: a batch of yesterday at the account's first facility."""
    facility = account.facilities.first()
    feedstock_type = account.feedstock_types.first()
    started = timezone.localtime().replace(hour=6, minute=0, second=0, microsecond=0)
    started = started.replace(tzinfo=None) - timedelta(days=1)
    return [
        "",
        "",
        facility.name if facility else "",
        feedstock_type.name if feedstock_type else "",
        started,
        started + timedelta(hours=8),
        Decimal("12.5"),
        settings.BATCH_MASS_UNITS[0],
        None,
    ]


_HEADERS = {column.key: column.header for column in TEMPLATE_COLUMNS}
_TWICE = "Another row of this file has the same supplier reference."
_CONFLICTING = (
    "A batch with this supplier reference is already in the portal, with other values. "
    "Correct that batch in the portal, or give this row another reference."
)
