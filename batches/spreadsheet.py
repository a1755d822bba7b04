"""The columns of a batch in a spreadsheet: the import template's, which an export repeats (plus
where the batch stands), so that an export can be edited and imported again; and writing
such files, CSV or XLSX, streamed, with no cell a spreadsheet would run as a formula."""

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import FileResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet


@dataclass(frozen=True)
class Column:
    key: str  # the batch form's field name, or the export's own
    header: str  # what the file's first row says


# The import template's columns, in order: the batch form's fields. Facilities and feedstock
# types are named by their name or their Isometric id; several feedstock types are separated
# by FEEDSTOCK_SEPARATOR.
TEMPLATE_COLUMNS = (
    Column("supplier_reference_id", "Supplier reference"),
    Column("display_name", "Display name"),
    Column("facility", "Facility"),
    Column("feedstock_types", "Feedstock types"),
    Column("started_at", "Production started"),
    Column("ended_at", "Production ended"),
    Column("mass_magnitude", "Mass"),
    Column("mass_unit", "Unit"),
    Column("mass_standard_deviation", "Standard deviation"),
)
# What an export adds after them: where each batch stands. An import ignores these columns.
EXPORT_COLUMNS = (
    *TEMPLATE_COLUMNS,
    Column("account", "Isometric account"),
    Column("sync_status", "Status"),
    Column("remote_id", "Isometric id"),
    Column("uploaded_at", "Uploaded to Isometric"),
)
FEEDSTOCK_SEPARATOR = ";"


# A cell starting so is run as a formula by a spreadsheet (OWASP's "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_PIECE = 64 * 1024  # characters of CSV sent at a time


def neutralised(text: str) -> str:
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_download(
    filename: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]
) -> StreamingHttpResponse:
    """A CSV file streamed as it is written: UTF-8 with a byte-order mark (so that Excel reads
    it as such), text that would be a formula neutralised."""
    response = StreamingHttpResponse(_csv_pieces(headers, rows), content_type="text/csv")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


def _csv_pieces(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(headers)
    yield _emptied(buffer)  # the download starts before the first rows are read
    for row in rows:
        writer.writerow(csv_text(value) for value in row)
        if buffer.tell() >= CSV_PIECE:
            yield _emptied(buffer)
    yield _emptied(buffer)


def _emptied(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def csv_text(value: Any) -> str:
    match value:
        case None:
            return ""
        case datetime():
            # The batch form's precision: minutes, unless the moment has more (from Isometric).
            return value.isoformat(" ", "auto" if value.second or value.microsecond else "minutes")
        case Decimal():
            return f"{value.normalize():f}"  # never an exponent: 100, not 1E+2
        case str():
            return neutralised(value)
        case _:
            return str(value)


def xlsx_download(
    filename: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]
) -> FileResponse:
    """A workbook written row by row (openpyxl's write-only mode) to a temporary file, which is
    streamed, then deleted."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Batches")
    for index, header in enumerate(headers, 1):
        # A date in a column narrower than its text shows as "#####".
        sheet.column_dimensions[get_column_letter(index)].width = max(18, len(header) + 2)
    sheet.freeze_panes = "A2"
    sheet.append(list(headers))
    for row in rows:
        sheet.append([_xlsx_cell(sheet, value) for value in row])
    file = tempfile.TemporaryFile()  # noqa: SIM115 (the response closes it once sent)
    try:
        workbook.save(file)
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return FileResponse(file, as_attachment=True, filename=filename, content_type=XLSX_TYPE)


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _xlsx_cell(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    match value:
        case datetime():
            cell = WriteOnlyCell(sheet, value)
            has_seconds = value.second or value.microsecond
            cell.number_format = "yyyy-mm-dd hh:mm:ss" if has_seconds else "yyyy-mm-dd hh:mm"
            return cell
        case str() if value:
            # Excel files cannot hold most control characters: openpyxl refuses them.
            cell = WriteOnlyCell(sheet, neutralised(ILLEGAL_CHARACTERS_RE.sub("", value)))
            cell.data_type = "s"  # openpyxl would write "=…" as a formula, "#N/A" as an error
            return cell
        case str():
            return None
        case _:
            return value
