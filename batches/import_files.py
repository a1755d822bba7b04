"""An uploaded spreadsheet of batches read into rows of text, one value per template column.

Only the file is read here: whether a value is a valid batch field is the batch form's to say,
row by row. A CSV file (UTF-8, UTF-16 with a byte-order mark, or Windows-1252; comma, semicolon
or tab separated) or an Excel workbook (.xlsx, its first worksheet) is read as a stream, so a
file of many rows costs only the rows the caller keeps. `normalise_decimal` and
`normalise_moment` turn the forms a spreadsheet writes numbers and moments in into the forms the
batch form accepts.
"""

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Buffer, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import chain
from typing import IO, BinaryIO

import openpyxl
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from batches.spreadsheet import TEMPLATE_COLUMNS

# The columns a file must have; the others may be left out.
REQUIRED_KEYS = frozenset(
    {"facility", "feedstock_types", "started_at", "ended_at", "mass_magnitude"}
)
HEADERS = {column.key: column.header for column in TEMPLATE_COLUMNS}

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the OLE2 container of Excel 97-2003
# Files operators upload by mistake whose first bytes are text, so the binary check misses them.
OTHER_MAGIC = (b"%PDF-", b"{\\rtf", b"\x89PNG", b"GIF8", b"\xff\xd8\xff")
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
CHUNK = 64 * 1024
# An XLSX is a zip: what it unpacks to is bounded before openpyxl opens it, as a multiple of the
# upload limit and as a compression ratio no spreadsheet reaches (a sheet of identical rows
# compresses about 15 times).
MAX_UNPACKED_FACTOR = 10
MAX_COMPRESSION_RATIO = 100
SEPARATORS = ",;\t"


class UnreadableFile(Exception):
    """The file cannot be imported at all; its message is a sentence for the operator."""


@dataclass(slots=True)
class Row:
    number: int  # the row as the operator's spreadsheet numbers it: the header row is 1
    values: dict[str, str]  # column key -> the cell's text, stripped ("" for an empty cell)


@dataclass
class TableStream:
    """A file's columns, read at once, and its rows, read as they are iterated.

    Iterating may still raise UnreadableFile (too many rows, a file damaged further on): a caller
    must not act on the rows before the iteration ends."""

    columns: list[str]
    rows: Iterator[Row]


def iter_table(file: UploadedFile | BinaryIO, name: str) -> TableStream:
    """The table in `file`, whose type is told by its content; `name` (the uploaded file's name)
    is for messages and to tell an old .xls saved as a web page."""
    file.seek(0)
    _check_size(file, name)
    head = file.read(512)
    file.seek(0)
    if head.startswith(XLSX_MAGIC):
        records = _xlsx_records(file, name)
    elif head.startswith(XLS_MAGIC) or (_is_markup(head) and name.lower().endswith(".xls")):
        # Excel 97-2003's own format, or the web page or XML that older programs name .xls.
        raise UnreadableFile(
            f"{name} is in the old Excel format (.xls): save it as an Excel workbook (.xlsx) or "
            "as CSV, and upload that."
        )
    elif head.startswith(OTHER_MAGIC) or _is_markup(head):
        raise _not_a_spreadsheet(name)
    else:
        records = _csv_records(file, name)
    return _table(enumerate(records, start=1), name)


def _is_markup(head: bytes) -> bool:
    return head.removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"<")


def _check_size(file: UploadedFile | BinaryIO, name: str) -> None:
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    if size == 0:
        raise _empty(name)
    limit = settings.BATCH_IMPORT_MAX_BYTES
    if size > limit:
        raise UnreadableFile(
            f"{name} is {_megabytes(size)}; files of up to {_megabytes(limit)} can be imported: "
            "split it into smaller files."
        )


def _megabytes(size: int) -> str:
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def _empty(name: str) -> UnreadableFile:
    return UnreadableFile(f"{name} is empty: it has no header row and no batches.")


def _not_a_spreadsheet(name: str) -> UnreadableFile:
    return UnreadableFile(
        f"{name} is not a spreadsheet: upload a CSV file or an Excel workbook (.xlsx)."
    )


# The table, from a file's records (its rows' cells as text)


def _table(records: Iterator[tuple[int, list[str]]], name: str) -> TableStream:
    for _, header in records:
        if any(cell.strip() for cell in header):
            positions = _positions(header, name)
            return TableStream(columns=list(positions), rows=_rows(records, positions, name))
    raise _empty(name)


def _positions(header: list[str], name: str) -> dict[str, int]:
    """Where each template column is in the header row; other columns are ignored."""
    positions: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = _key_of(cell)
        if key in positions:
            raise UnreadableFile(f'{name} has two "{HEADERS[key]}" columns: keep one of them.')
        if key is not None:
            positions[key] = index
    missing = [HEADERS[key] for key in HEADERS if key in REQUIRED_KEYS - positions.keys()]
    if missing:
        raise UnreadableFile(
            f"{name} has no {_quoted_list(missing)} column{'s' if len(missing) > 1 else ''}: "
            "its first row must name the columns, as the template's does."
        )
    return positions


def _comparable(text: str) -> str:
    return " ".join(text.split()).casefold()


# A header names a column by its header ("Supplier reference") or its key, in any case.
KEYS_BY_NAME = {
    _comparable(name): column.key
    for column in TEMPLATE_COLUMNS
    for name in (column.header, column.key)
}


def _key_of(header: str) -> str | None:
    return KEYS_BY_NAME.get(_comparable(header))


def _quoted_list(items: list[str]) -> str:
    quoted = [f'"{item}"' for item in items]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _rows(
    records: Iterator[tuple[int, list[str]]], positions: dict[str, int], name: str
) -> Iterator[Row]:
    limit = settings.BATCH_IMPORT_MAX_ROWS
    count = 0
    for number, cells in records:
        values = {key: _cell(cells, index) for key, index in positions.items()}
        if not any(values.values()):
            continue
        count += 1
        if count > limit:
            raise UnreadableFile(
                f"{name} has more than {limit:,} batches; up to {limit:,} can be imported at "
                "once: split it into smaller files."
            )
        yield Row(number=number, values=values)


def _cell(cells: list[str], index: int) -> str:
    return _unescaped(cells[index].strip()) if index < len(cells) else ""


def _unescaped(text: str) -> str:
    """A value without the apostrophe an export puts before "=", "+", "-" or "@" so that a
    spreadsheet shows it as text instead of running it as a formula: importing an export
    gives back the values exported."""
    if text[:1] == "'" and text[1:2] in ("=", "+", "-", "@"):
        return text[1:]
    return text


# CSV


def _csv_records(file: IO[bytes], name: str) -> Iterator[list[str]]:
    encoding = _text_encoding(file, name)
    lines = io.TextIOWrapper(io.BufferedReader(_Borrowed(file)), encoding=encoding, newline="")
    leading = list(_through_first_filled_line(lines))
    separator = _separator(leading[-1]) if leading else ","
    return _csv_rows(chain(leading, lines), separator, name)


class _Borrowed(io.RawIOBase):
    """The caller's file, read through this so that the text reader, when it is closed or
    collected, does not close the file with it."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer)
        data = self._file.read(len(view))
        view[: len(data)] = data
        return len(data)


def _text_encoding(file: IO[bytes], name: str) -> str:
    """The encoding of a text file: UTF-16 if it starts with its byte-order mark (Excel's
    "Unicode text"), else UTF-8 (a byte-order mark dropped) if the whole file is valid UTF-8,
    else Windows-1252 (Excel's "CSV" on Windows). Checking the whole file first, a chunk at a
    time, means rows are never handed out and then found to be in another encoding."""
    bom = file.read(2)
    file.seek(0)
    candidates = ["utf-16"] if bom in UTF16_BOMS else ["utf-8-sig", "cp1252"]
    decoders = {encoding: codecs.getincrementaldecoder(encoding)() for encoding in candidates}
    for chunk, final in _chunks(file):
        _feed(decoders, chunk, final)
        if not decoders:
            raise _not_a_spreadsheet(name)
    file.seek(0)
    return next(iter(decoders))


def _chunks(file: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    while chunk := file.read(CHUNK):
        yield chunk, False
    yield b"", True


def _feed(decoders: dict[str, codecs.IncrementalDecoder], chunk: bytes, final: bool) -> None:
    """Decodes the chunk with each encoding still possible, dropping those the file is not
    valid in, or that find a NUL in it: no text file has one (git and file(1) take it for
    binary)."""
    for encoding, decoder in list(decoders.items()):
        try:
            text = decoder.decode(chunk, final=final)
        except UnicodeDecodeError:
            text = "\x00"
        if "\x00" in text:
            del decoders[encoding]


def _through_first_filled_line(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        yield line
        if line.strip():
            return


def _separator(header_line: str) -> str:
    """The separator that makes the most template headers of the header line, then the most
    cells: Excel writes ";" where "," is the decimal comma, and "\t" in "Unicode text"."""

    def score(separator: str) -> tuple[int, int]:
        cells = next(csv.reader([header_line], delimiter=separator))
        return sum(_key_of(cell) is not None for cell in cells), len(cells)

    return max(SEPARATORS, key=score)


def _csv_rows(lines: Iterable[str], separator: str, name: str) -> Iterator[list[str]]:
    reader = csv.reader(lines, delimiter=separator)
    try:
        yield from reader
    except csv.Error as error:  # a cell longer than csv's limit (131,072 characters)
        raise UnreadableFile(
            f"{name} has a cell too long to read by line {reader.line_num}: "
            "is a quote left open before it?"
        ) from error


# XLSX


def _xlsx_records(file: IO[bytes], name: str) -> Iterator[list[str]]:
    _check_unpacked_size(file, name)
    try:
        workbook = openpyxl.load_workbook(file, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds of error for a damaged file
        raise _damaged_workbook(name) from error
    if not workbook.worksheets:
        workbook.close()
        raise _damaged_workbook(name)
    return _sheet_rows(workbook, name)


def _check_unpacked_size(file: IO[bytes], name: str) -> None:
    """Refuses a zip bomb from the sizes the zip declares (zipfile never unpacks more)."""
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as error:
        raise _damaged_workbook(name) from error
    file.seek(0)
    unpacked = sum(member.file_size for member in members)
    most_compressed = max(
        (member.file_size / max(member.compress_size, 1) for member in members), default=0
    )
    limit = settings.BATCH_IMPORT_MAX_BYTES * MAX_UNPACKED_FACTOR
    if unpacked > limit or most_compressed > MAX_COMPRESSION_RATIO:
        packed = file.seek(0, io.SEEK_END)
        file.seek(0)
        raise UnreadableFile(
            f"{name} unpacks to {_megabytes(unpacked)} from {_megabytes(packed)}, which no "
            "spreadsheet of batches does: it was not opened."
        )


def _damaged_workbook(name: str) -> UnreadableFile:
    return UnreadableFile(
        f"{name} is damaged or is not an Excel workbook: save it again as an Excel workbook "
        "(.xlsx) or as CSV."
    )


def _sheet_rows(workbook: openpyxl.Workbook, name: str) -> Iterator[list[str]]:
    sheet = workbook.worksheets[0]
    # The declared dimensions may be wrong (some programs write none, or A1:A1): read every row.
    sheet.reset_dimensions()
    try:
        for values in sheet.iter_rows(min_row=1, values_only=True):
            yield [_xlsx_text(value) for value in values]
    except Exception as error:  # a damaged sheet
        raise _damaged_workbook(name) from error
    finally:
        workbook.close()


def _xlsx_text(value: object) -> str:
    """A cell's value as the batch form reads it in text: moments in ISO form, numbers in plain
    decimals as Excel shows them."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return _iso_moment(_to_datetime(value))
    if isinstance(value, bool):
        return str(value).upper()  # as Excel shows it; no batch field is a boolean
    if isinstance(value, int | float):
        return _plain_number(value)
    return str(value)  # text; also a time of day or a duration, which the form refuses


def _to_datetime(value: date) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, time())
    # Excel keeps moments as fractions of a day: 14:05 may come back a millisecond short.
    return (value + timedelta(microseconds=500_000)).replace(microsecond=0)


def _plain_number(value: float) -> str:
    """Excel shows 15 significant digits, so 0.1 + 0.2 (0.30000000000000004) is 0.3 there and
    here; a decimal without exponent (1e20 as 100000000000000000000)."""
    return f"{Decimal(f'{value:.15g}').normalize():f}"


# Values as a spreadsheet writes them, as the batch form reads them


def _iso_moment(moment: datetime) -> str:
    if moment.microsecond:
        return moment.isoformat(timespec="microseconds")
    return moment.isoformat(timespec="seconds" if moment.second else "minutes")


NUMERAL = re.compile(r"[+-]?\d[\d.,]*")


def normalise_decimal(text: str) -> str:
    """A number written with a decimal comma or thousands separators ("12,5", "1.234,5",
    "1,234.5") in the form the batch form reads ("12.5", "1234.5"); anything else unchanged,
    so that the form reports it. A dot alone is a decimal point ("1.234" stays); a comma before
    exactly three digits ("1,234", "12,500") could be either and is left for the form to refuse,
    not guessed into a mass a thousand times off."""
    value = text.strip()
    parts = _whole_and_fraction(value) if NUMERAL.fullmatch(value) else None
    if parts is None:
        return text
    whole, fraction = parts
    return f"{whole}.{fraction}" if fraction else whole


def _whole_and_fraction(numeral: str) -> tuple[str, str] | None:
    last = max(numeral.rfind(","), numeral.rfind("."))
    if last == -1:
        return numeral, ""
    separator = numeral[last]
    if numeral.count(separator) > 1:  # "1,234,567": a thousands separator, no fraction
        whole, fraction, grouping = numeral, "", separator
    else:
        whole, fraction = numeral[:last], numeral[last + 1 :]
        grouping = "," if separator == "." else "."
        if not fraction.isdigit() or (
            separator == "," and len(fraction) == 3 and _could_group(whole)
        ):
            return None
    ungrouped = _ungrouped(whole, grouping) if grouping in whole else whole
    return (ungrouped, fraction) if ungrouped is not None else None


def _ungrouped(numeral: str, separator: str) -> str | None:
    sign = numeral[:1] if numeral[:1] in "+-" else ""
    groups = numeral[len(sign) :].split(separator)
    well_grouped = 1 <= len(groups[0]) <= 3 and all(len(group) == 3 for group in groups[1:])
    return sign + "".join(groups) if well_grouped and "".join(groups).isdigit() else None


def _could_group(whole: str) -> bool:
    digits = whole.lstrip("+-")
    return len(digits) <= 3 and not digits.startswith("0")


# The portal's display form ("30 Nov 2026 14:05", `j M Y H:i`) and spreadsheets' day-first
# forms, each with or without a time (a date alone is midnight); ISO is read apart.
DATE_FORMATS = ("%d %b %Y", "%d %B %Y", "%d/%m/%Y", "%d.%m.%Y")
TIME_FORMATS = (" %H:%M", " %H:%M:%S", "")
MOMENT_FORMATS = tuple(day + hour for day in DATE_FORMATS for hour in TIME_FORMATS)


def normalise_moment(text: str) -> str:
    """A moment in a form a spreadsheet or the portal writes it, as the ISO text the batch
    form reads ("2026-11-30T14:05", naive: the portal's time zone); anything else unchanged,
    so that the form reports it (an ISO moment with an offset too: the form reads it as it is)."""
    value = " ".join(text.split())
    moment = _iso_naive(value) or _written_moment(value)
    return _iso_moment(moment) if moment is not None else text


def _iso_naive(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is None else None


def _written_moment(value: str) -> datetime | None:
    for moment_format in MOMENT_FORMATS:
        try:
            return datetime.strptime(value, moment_format)
        except ValueError:
            continue
    return None
