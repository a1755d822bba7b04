"""The batch list, searched and filtered as its page is, as a file to download: CSV or XLSX in
the columns of batches.spreadsheet, whose writers stream it. The batches are read a chunk at a
time, so memory stays flat however long the list is."""

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from django.db.models import Prefetch, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from batches import selectors, spreadsheet
from batches.models import FeedstockType, ProductionBatch
from batches.spreadsheet import EXPORT_COLUMNS, FEEDSTOCK_SEPARATOR

CSV, XLSX = "csv", "xlsx"
FORMATS = [(CSV, "CSV"), (XLSX, "Excel workbook (XLSX)")]
CHUNK_SIZE = 2000  # batches read per query
# What the export reads of a batch: the columns, and nothing of its sync history.
FIELDS = (
    "supplier_reference_id",
    "display_name",
    "facility__name",
    "started_at",
    "ended_at",
    "mass_magnitude",
    "mass_unit",
    "mass_standard_deviation",
    "account__name",
    "sync_status",
    "remote_id",
    "uploaded_at",
)

Value = str | Decimal | datetime | None


def download(
    batches: QuerySet[ProductionBatch], file_format: str, sort: selectors.Sort
) -> StreamingHttpResponse:
    """The file of `batches` in `file_format` (CSV or XLSX), in the list's order `sort`, as a
    response streamed to the browser, named after today's date."""
    filename = f"batches-{timezone.localdate():%Y-%m-%d}.{file_format}"
    headers = [column.header for column in EXPORT_COLUMNS]
    if file_format == XLSX:
        return spreadsheet.xlsx_download(filename, headers, rows(batches, sort))
    return spreadsheet.csv_download(filename, headers, rows(batches, sort))


def rows(batches: QuerySet[ProductionBatch], sort: selectors.Sort) -> Iterator[list[Value]]:
    """Each batch's values in the order of EXPORT_COLUMNS: text, decimals, naive datetimes in
    the portal's time zone, or None."""
    batches = (
        batches.select_related("facility", "account")
        .only(*FIELDS)
        .prefetch_related(Prefetch("feedstock_types", queryset=FeedstockType.objects.only("name")))
    )
    for batch in selectors.in_chunks(batches, CHUNK_SIZE, sort):
        yield [_value(batch, column.key) for column in EXPORT_COLUMNS]


def _value(batch: ProductionBatch, key: str) -> Value:
    match key:
        case "facility":
            return batch.facility.name
        case "account":
            return batch.account.name
        case "feedstock_types":
            names = (feedstock_type.name for feedstock_type in batch.feedstock_types.all())
            return f"{FEEDSTOCK_SEPARATOR} ".join(names)
        case "sync_status":
            return batch.get_sync_status_display()
    value = getattr(batch, key)
    if isinstance(value, datetime):
        return timezone.localtime(value).replace(tzinfo=None)
    return value
