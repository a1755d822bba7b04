"""Reading an uploaded spreadsheet of batches: CSV in the encodings and separators spreadsheets
write, XLSX with real date and number cells, and the files an import must refuse."""

import csv
import io
import random
import struct
import tracemalloc
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, BinaryIO

import openpyxl
import pytest
from django import forms
from django.core.files.uploadedfile import (
    SimpleUploadedFile,
    TemporaryUploadedFile,
    UploadedFile,
)
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from pytest_django.fixtures import Settings

from batches import import_files
from batches.import_files import (
    Row,
    UnreadableFile,
    iter_table,
    normalise_decimal,
    normalise_moment,
)
from batches.spreadsheet import EXPORT_COLUMNS, TEMPLATE_COLUMNS

HEADERS = [column.header for column in TEMPLATE_COLUMNS]
KEYS = [column.key for column in TEMPLATE_COLUMNS]
BATCH = [
    "PB-1",
    "Kiln run",
    "Kiln A",
    "Wood chips",
    "2026-11-30T08:00",
    "2026-11-30T14:05",
    "12.5",
    "tonne",
    "0.5",
]
BATCH_VALUES = dict(zip(KEYS, BATCH, strict=True))


@dataclass
class Table:
    rows: list[Row]
    columns: list[str]


def read_table(file: UploadedFile | BinaryIO, name: str) -> Table:
    """The whole file at once, which the tests compare as a value."""
    stream = iter_table(file, name)
    return Table(rows=list(stream.rows), columns=stream.columns)


def upload(data: bytes, name: str = "batches.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def csv_bytes(
    rows: list[list[str]], separator: str = ",", encoding: str = "utf-8", end: str = ""
) -> bytes:
    text = io.StringIO()
    csv.writer(text, delimiter=separator).writerows(rows)
    return (text.getvalue() + end).encode(encoding)


def read_csv(rows: list[list[str]], **options: Any) -> Table:
    return read_table(upload(csv_bytes(rows, **options)), "batches.csv")


def refusal(data: bytes, name: str = "batches.csv") -> str:
    with pytest.raises(UnreadableFile) as refused:
        read_table(upload(data, name), name)
    return str(refused.value)


def xlsx_bytes(rows: list[list[Any]], **cells: Any) -> bytes:
    """A workbook whose first sheet has `rows`; `cells` sets more cells by coordinate."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    for coordinate, value in cells.items():
        sheet[coordinate] = value
    data = io.BytesIO()
    workbook.save(data)
    return data.getvalue()


def rewritten(xlsx: bytes, member: str, old: bytes, new: bytes) -> bytes:
    """The workbook with bytes of one of its parts replaced: what Excel writes that openpyxl
    does not."""
    source = zipfile.ZipFile(io.BytesIO(xlsx))
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == member:
                assert old in content
                content = content.replace(old, new)
            target.writestr(info.filename, content)
    return data.getvalue()


# CSV: encodings and separators


@pytest.mark.parametrize(
    ("encoding", "separator"),
    [
        ("utf-8", ","),
        ("utf-8-sig", ","),  # Excel's "CSV UTF-8": a byte-order mark first
        ("cp1252", ";"),  # Excel's "CSV" in a decimal-comma locale
        ("cp1252", ","),
        ("utf-16", "\t"),  # Excel's "Unicode text"
    ],
)
def test_csv_in_each_encoding_and_separator(encoding: str, separator: str) -> None:
    named = [*BATCH[:1], "Hêtre \u2013 lot €5", "Kiln Ä", *BATCH[3:]]
    table = read_csv([HEADERS, named], separator=separator, encoding=encoding)
    assert table.columns == KEYS
    assert table.rows == [Row(number=2, values=dict(zip(KEYS, named, strict=True)))]


def test_cp1252_is_read_when_the_file_is_not_utf8_past_its_first_chunk() -> None:
    filler = [[*BATCH[:1], f"Batch {n}", *BATCH[2:]] for n in range(5000)]
    late = [*BATCH[:1], "Épicéa", *BATCH[2:]]
    data = csv_bytes([HEADERS, *filler, late], encoding="cp1252")
    assert len(data) > 2 * import_files.CHUNK
    table = read_table(upload(data), "batches.csv")
    assert table.rows[-1].values["display_name"] == "Épicéa"
    assert table.rows[-1].number == len(filler) + 2


def test_semicolons_are_chosen_though_the_values_have_decimal_commas() -> None:
    table = read_csv([HEADERS, [*BATCH[:6], "12,5", "tonne", "0,5"]], separator=";")
    assert table.rows[0].values["mass_magnitude"] == "12,5"
    assert table.rows[0].values["mass_standard_deviation"] == "0,5"


def test_quoted_cells_keep_separators_and_line_breaks() -> None:
    data = (
        ",".join(HEADERS) + "\r\n"
        'PB-1,"Kiln, north ""A""\nsecond line",Kiln A,"Wood; chips",'
        "2026-11-30T08:00,2026-11-30T14:05,12.5,tonne,0.5\r\n"
        "PB-2,,Kiln A,Wood chips,2026-11-30T08:00,2026-11-30T14:05,3,,\r\n"
    ).encode()
    table = read_table(upload(data), "batches.csv")
    assert table.rows[0].values["display_name"] == 'Kiln, north "A"\nsecond line'
    assert table.rows[0].values["feedstock_types"] == "Wood; chips"
    # Numbered as a spreadsheet shows them: the quoted line break does not start a row.
    assert [row.number for row in table.rows] == [2, 3]


def test_blank_rows_and_blank_trailing_columns_are_dropped() -> None:
    data = (
        ",".join(HEADERS)
        + ",,\n"
        + ",".join(BATCH)
        + ",,\n"
        + "\n"
        + ",,,,,,,,,,\n"
        + ",".join(BATCH)
        + "\n"
        + "\n\n,,,\n"
    ).encode()
    table = read_table(upload(data), "batches.csv")
    assert table.columns == KEYS
    assert [(row.number, row.values) for row in table.rows] == [
        (2, BATCH_VALUES),
        (5, BATCH_VALUES),
    ]


def test_rows_before_the_header_are_skipped_and_still_numbered() -> None:
    table = read_table(upload(b"\n" + csv_bytes([HEADERS, BATCH])), "batches.csv")
    assert table.rows == [Row(number=3, values=BATCH_VALUES)]


def test_headers_match_in_any_case_and_spacing_by_header_or_key() -> None:
    headers = [
        "  SUPPLIER REFERENCE ",
        "display_name",
        "facility",
        "Feedstock  Types",
        "production started",
        "ENDED_AT",
        " Mass",
        "unit",
        "Standard deviation  ",
    ]
    table = read_csv([headers, BATCH])
    assert table.columns == KEYS
    assert table.rows[0].values == BATCH_VALUES


def test_an_export_imports_with_its_own_columns_ignored() -> None:
    export_row = [*BATCH, "Kilns Ltd", "synced", "0b5f3a", "30 Nov 2026 15:00"]
    table = read_csv([[column.header for column in EXPORT_COLUMNS], export_row])
    assert table.columns == KEYS
    assert table.rows[0].values == BATCH_VALUES


def test_columns_in_file_order_optional_ones_may_be_absent() -> None:
    table = read_csv(
        [
            [
                "Mass",
                "Notes",
                "Production ended",
                "Production started",
                "Feedstock types",
                "Facility",
            ],
            ["3", "ignored", "2026-11-30T14:05", "2026-11-30T08:00", "Wood chips", "Kiln A"],
            ["4", "", "", "", "", ""],
        ]
    )
    assert table.columns == [
        "mass_magnitude",
        "ended_at",
        "started_at",
        "feedstock_types",
        "facility",
    ]
    assert table.rows[1] == Row(
        number=3,
        values={
            "mass_magnitude": "4",
            "ended_at": "",
            "started_at": "",
            "feedstock_types": "",
            "facility": "",
        },
    )


def test_short_rows_have_their_missing_cells_empty_and_cells_are_stripped() -> None:
    table = read_table(upload(f"{','.join(HEADERS)}\n  PB-1 , Kiln run ,Kiln A\n".encode()), "x")
    assert table.rows[0].values == {
        **dict.fromkeys(KEYS, ""),
        "supplier_reference_id": "PB-1",
        "display_name": "Kiln run",
        "facility": "Kiln A",
    }


def test_text_values_stay_as_written() -> None:
    written = [*BATCH[:4], "30 Nov 2026 08:00", "30/11/2026 14:05", "1.234,5", "t", ""]
    table = read_csv([HEADERS, written], separator=";")
    assert table.rows[0].values == dict(zip(KEYS, written, strict=True))


def test_an_exports_apostrophe_before_a_formula_is_taken_off() -> None:
    neutralised = [*BATCH[:1], "'=HYPERLINK(1)", "'Kiln", "'+x", *BATCH[4:]]
    values = read_csv([HEADERS, neutralised]).rows[0].values
    assert values["display_name"] == "=HYPERLINK(1)"
    assert values["facility"] == "'Kiln"  # no formula after it: the operator's apostrophe
    assert values["feedstock_types"] == "+x"


def test_a_header_only_file_has_no_rows() -> None:
    table = read_csv([HEADERS])
    assert table == Table(rows=[], columns=KEYS)


@given(
    st.lists(
        st.lists(
            st.text(st.characters(codec="cp1252", exclude_characters="\x00"), max_size=12).filter(
                lambda value: not value.strip().startswith("'")  # apostrophes: tested apart
            ),
            min_size=len(KEYS),
            max_size=len(KEYS),
        ),
        max_size=5,
    ),
    st.sampled_from([",", ";", "\t"]),
    st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]),
)
def test_any_csv_reads_back_what_was_written(
    rows: list[list[str]], separator: str, encoding: str
) -> None:
    table = read_csv([HEADERS, *rows], separator=separator, encoding=encoding)
    expected = [{key: value.strip() for key, value in zip(KEYS, row, strict=True)} for row in rows]
    assert [row.values for row in table.rows] == [
        values for values in expected if any(values.values())
    ]


def test_a_django_temporary_upload_is_read_and_left_open() -> None:
    upload_file = TemporaryUploadedFile("batches.csv", "text/csv", 0, None)
    upload_file.write(csv_bytes([HEADERS, BATCH], encoding="utf-8-sig"))
    table = read_table(upload_file, "batches.csv")
    assert table.rows == [Row(number=2, values=BATCH_VALUES)]
    assert not upload_file.closed
    upload_file.close()


def test_a_refused_file_is_left_open_for_its_owner() -> None:
    data = io.BytesIO(csv_bytes([["Mass"], ["3"]]))
    with pytest.raises(UnreadableFile):
        read_table(data, "batches.csv")
    assert not data.closed


def test_rows_stream_without_being_held() -> None:
    rows = [[*BATCH[:1], f"Batch {n}", *BATCH[2:]] for n in range(20_000)]
    data = io.BytesIO(csv_bytes([HEADERS, *rows]))
    tracemalloc.start()
    try:
        stream = iter_table(data, "batches.csv")
        count = sum(1 for _ in stream.rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == len(rows)
    assert peak < 2 * 1024 * 1024  # the 20,000 rows alone take about 20 MB


# XLSX


def test_xlsx_dates_numbers_and_text_become_the_forms_text() -> None:
    data = xlsx_bytes(
        [
            [*HEADERS, "Status"],
            [
                "PB-1",
                "Kiln run",
                "Kiln A",
                "Wood chips",
                datetime(2026, 11, 30, 8, 0),
                datetime(2026, 11, 30, 14, 5, 30),
                12.5,
                "tonne",
                3,
                "synced",
            ],
            [
                "PB-2",
                None,
                "Kiln A",
                "Wood chips",
                date(2026, 11, 30),
                datetime(2026, 12, 1),
                1e20,
                "kg",
                0.0000001,
            ],
        ]
    )
    table = read_table(upload(data, "batches.xlsx"), "batches.xlsx")
    assert table.columns == KEYS
    assert [row.values for row in table.rows] == [
        {
            **BATCH_VALUES,
            "started_at": "2026-11-30T08:00",
            "ended_at": "2026-11-30T14:05:30",
            "mass_standard_deviation": "3",
        },
        {
            **BATCH_VALUES,
            "supplier_reference_id": "PB-2",
            "display_name": "",
            "started_at": "2026-11-30T00:00",
            "ended_at": "2026-12-01T00:00",
            "mass_magnitude": "100000000000000000000",
            "mass_unit": "kg",
            "mass_standard_deviation": "0.0000001",
        },
    ]


def test_xlsx_moments_and_numbers_are_what_the_form_reads() -> None:
    data = xlsx_bytes([HEADERS, [*BATCH[:4], datetime(2026, 11, 30, 8, 0), BATCH[5], 12.5]])
    values = read_table(upload(data), "batches.xlsx").rows[0].values
    assert forms.DateTimeField().clean(values["started_at"]) == timezone.make_aware(
        datetime(2026, 11, 30, 8, 0)
    )
    assert forms.DecimalField().clean(values["mass_magnitude"]) == Decimal("12.5")


def test_xlsx_float_noise_is_shown_as_excel_shows_it() -> None:
    # Excel writes 0.1 + 0.2 with 17 digits; openpyxl would write 16, so the part is rewritten.
    data = xlsx_bytes([HEADERS, [*BATCH[:6], 0.125]])
    data = rewritten(
        data, "xl/worksheets/sheet1.xml", b"<v>0.125</v>", b"<v>0.30000000000000004</v>"
    )
    assert read_table(upload(data), "batches.xlsx").rows[0].values["mass_magnitude"] == "0.3"


def test_xlsx_moment_a_fraction_of_a_second_short_is_rounded() -> None:
    data = xlsx_bytes([HEADERS, [*BATCH[:4], datetime(2026, 11, 30, 14, 4, 59, 600_000)]])
    assert read_table(upload(data), "x.xlsx").rows[0].values["started_at"] == "2026-11-30T14:05"


def test_xlsx_text_that_starts_with_equals_stays_text() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADERS)
    sheet.append(["'=1+2", "x", *BATCH[2:]])
    cell = sheet.cell(row=2, column=2)
    cell.value = "=SUM(A1:A2)"
    cell.data_type = "s"  # what Excel stores for '=SUM(A1:A2) typed in a cell
    cell.quotePrefix = True
    data = io.BytesIO()
    workbook.save(data)
    values = read_table(upload(data.getvalue()), "x.xlsx").rows[0].values
    assert values["supplier_reference_id"] == "=1+2"
    assert values["display_name"] == "=SUM(A1:A2)"


def test_xlsx_blank_rows_are_dropped_and_rows_keep_their_numbers() -> None:
    data = xlsx_bytes([HEADERS, BATCH, [], [None] * 9, BATCH], H9="", A12=" ")
    table = read_table(upload(data), "x.xlsx")
    assert [row.number for row in table.rows] == [2, 5]


def test_xlsx_only_the_first_worksheet_is_read() -> None:
    workbook = openpyxl.Workbook()
    first = workbook.active
    assert first is not None
    first.append(HEADERS)
    first.append(BATCH)
    workbook.create_sheet("Notes").append(["Mass", "x"])
    data = io.BytesIO()
    workbook.save(data)
    table = read_table(upload(data.getvalue()), "x.xlsx")
    assert table.rows == [Row(number=2, values=BATCH_VALUES)]


def test_xlsx_with_wrong_declared_dimensions_is_read_whole() -> None:
    data = xlsx_bytes([HEADERS, BATCH])
    data = rewritten(
        data, "xl/worksheets/sheet1.xml", b'<dimension ref="A1:I2"', b'<dimension ref="A1:A1"'
    )
    table = read_table(upload(data), "x.xlsx")
    assert table.rows == [Row(number=2, values=BATCH_VALUES)]


def test_the_type_is_told_by_content_not_name() -> None:
    as_csv = read_table(upload(xlsx_bytes([HEADERS, BATCH])), "batches.csv")
    as_xlsx = read_table(upload(csv_bytes([HEADERS, BATCH])), "batches.xlsx")
    assert as_csv == as_xlsx == Table(rows=[Row(2, BATCH_VALUES)], columns=KEYS)


def test_xlsx_rows_stream_from_a_read_only_workbook() -> None:
    data = io.BytesIO(xlsx_bytes([HEADERS, *[BATCH] * 5000]))
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_table(data, "x.xlsx").rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 5000
    assert peak < 5 * 1024 * 1024  # a workbook opened whole takes several times this


# Files an import refuses


def test_an_empty_file_is_refused() -> None:
    assert refusal(b"") == "batches.csv is empty: it has no header row and no batches."
    assert "is empty" in refusal(b"\r\n\n;;;\n")


def test_a_file_over_the_size_limit_is_refused(settings: Settings) -> None:
    settings.BATCH_IMPORT_MAX_BYTES = 1024 * 1024
    data = csv_bytes([HEADERS, *[BATCH] * 20_000])
    assert refusal(data) == (
        f"batches.csv is {len(data) / 1024 / 1024:.1f} MB; files of up to 1.0 MB can be imported: "
        "split it into smaller files."
    )


def test_the_size_limit_defaults_to_twenty_megabytes() -> None:
    from django.conf import settings

    assert settings.BATCH_IMPORT_MAX_BYTES == 20 * 1024 * 1024
    assert settings.BATCH_IMPORT_MAX_ROWS == 50_000


@pytest.mark.parametrize("make", [csv_bytes, xlsx_bytes])
def test_a_file_over_the_row_limit_is_refused(settings: Settings, make: Any) -> None:
    settings.BATCH_IMPORT_MAX_ROWS = 3
    assert len(read_table(upload(make([HEADERS, *[BATCH] * 3, [""] * 9])), "x").rows) == 3
    with pytest.raises(UnreadableFile, match="more than 3 batches; up to 3 can be imported"):
        read_table(upload(make([HEADERS, *[BATCH] * 4])), "x")


def test_a_stream_raises_at_the_row_over_the_limit(settings: Settings) -> None:
    settings.BATCH_IMPORT_MAX_ROWS = 2
    rows = iter_table(upload(csv_bytes([HEADERS, *[BATCH] * 3])), "x").rows
    assert [next(rows).number, next(rows).number] == [2, 3]
    with pytest.raises(UnreadableFile):
        next(rows)


def png() -> bytes:
    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(png(), id="png"),
        pytest.param(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n", id="pdf"),
        pytest.param(b"\xef\xbb\xbf  <!DOCTYPE html><html><body>Facility</body></html>", id="html"),
        pytest.param(bytes(range(256)) * 40, id="binary"),
        pytest.param(b"Facility,Mass\n\x81\x8d\x9d\n", id="neither-utf8-nor-cp1252"),
        pytest.param(b"Facility,Mass\n" + b"x" * 70_000 + b"\x00", id="nul-past-the-first-chunk"),
    ],
)
def test_a_file_that_is_not_a_spreadsheet_is_refused(data: bytes) -> None:
    assert refusal(data) == (
        "batches.csv is not a spreadsheet: upload a CSV file or an Excel workbook (.xlsx)."
    )


def test_a_quote_left_open_is_refused_where_it_runs_on() -> None:
    rows = [",".join(BATCH)] * 3 + ['PB-9,"Kiln run'] + [",".join(BATCH)] * 3000
    data = "\n".join([",".join(HEADERS), *rows]).encode()
    assert refusal(data).startswith("batches.csv has a cell too long to read by line ")


def a_zip(**members: bytes) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return data.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(a_zip(**{"notes.txt": b"hello"}), id="a-zip-of-something-else"),
        pytest.param(xlsx_bytes([HEADERS, BATCH])[:2000], id="truncated"),
        pytest.param(b"PK\x03\x04" + b"\x00" * 100, id="only-the-signature"),
    ],
)
def test_a_damaged_workbook_is_refused(data: bytes) -> None:
    assert refusal(data, "batches.xlsx") == (
        "batches.xlsx is damaged or is not an Excel workbook: save it again as an Excel workbook "
        "(.xlsx) or as CSV."
    )


def test_a_workbook_with_a_damaged_sheet_is_refused() -> None:
    data = rewritten(
        xlsx_bytes([HEADERS, BATCH, BATCH]), "xl/worksheets/sheet1.xml", b'<row r="3"', b"<rowx"
    )
    assert "is damaged" in refusal(data, "batches.xlsx")


@pytest.fixture
def openpyxl_must_not_open(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("openpyxl opened a zip bomb")

    monkeypatch.setattr(import_files.openpyxl, "load_workbook", refuse)


@pytest.mark.usefixtures("openpyxl_must_not_open")
def test_a_zip_bomb_is_refused_by_its_compression_ratio() -> None:
    bomb = a_zip(
        **{"[Content_Types].xml": b"<Types/>", "xl/worksheets/sheet1.xml": b" " * 50_000_000}
    )
    assert len(bomb) < 100_000
    assert refusal(bomb, "batches.xlsx") == (
        f"batches.xlsx unpacks to 47.7 MB from {round(len(bomb) / 1024)} KB, which no "
        "spreadsheet of batches does: it was not opened."
    )


@pytest.mark.usefixtures("openpyxl_must_not_open")
def test_a_zip_bomb_is_refused_by_its_unpacked_size(settings: Settings) -> None:
    settings.BATCH_IMPORT_MAX_BYTES = 20_000
    noise = random.Random(0)
    # Compressible about 20 times: under the ratio, but 10 times the limit unpacked.
    sheet = b"".join(noise.randbytes(40) + b" " * 960 for _ in range(250))
    bomb = a_zip(**{"xl/worksheets/sheet1.xml": sheet})
    info = zipfile.ZipFile(io.BytesIO(bomb)).infolist()[0]
    assert len(bomb) < 20_000
    assert info.file_size / info.compress_size < import_files.MAX_COMPRESSION_RATIO
    assert "unpacks to 244 KB from " in refusal(bomb, "batches.xlsx")


def test_a_file_without_the_required_columns_names_them() -> None:
    message = refusal(csv_bytes([["Supplier reference", "Facility", "Mass", "Status"], ["PB-1"]]))
    assert message == (
        'batches.csv has no "Feedstock types", "Production started" or "Production ended" '
        "columns: its first row must name the columns, as the template's does."
    )


def test_a_file_missing_one_column_names_it() -> None:
    assert refusal(csv_bytes([[h for h in HEADERS if h != "Mass"], BATCH[:-1]])) == (
        'batches.csv has no "Mass" column: its first row must name the columns, as the '
        "template's does."
    )


def test_a_column_given_twice_is_refused() -> None:
    assert refusal(csv_bytes([[*HEADERS, "mass_magnitude"], [*BATCH, "3"]])) == (
        'batches.csv has two "Mass" columns: keep one of them.'
    )


XLS_MESSAGE = (
    "batches.xls is in the old Excel format (.xls): save it as an Excel workbook (.xlsx) or as "
    "CSV, and upload that."
)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, id="excel-97"),
        pytest.param(b"<html><table><tr><td>Facility</td></tr></table></html>", id="html-as-xls"),
    ],
)
def test_an_xls_file_is_refused_with_what_to_do(data: bytes) -> None:
    assert refusal(data, "batches.xls") == XLS_MESSAGE


def test_a_csv_file_named_xls_is_read_as_csv() -> None:
    table = read_table(upload(csv_bytes([HEADERS, BATCH]), "batches.xls"), "batches.xls")
    assert table.rows == [Row(number=2, values=BATCH_VALUES)]


def test_an_xls_file_under_another_name_is_told_by_its_content() -> None:
    message = refusal(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "batches.csv")
    assert message == XLS_MESSAGE.replace("batches.xls", "batches.csv", 1)


# The helpers the row validation uses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12,5", "12.5"),
        ("1.234,5", "1234.5"),
        ("1,234.5", "1234.5"),
        ("1.234.567,25", "1234567.25"),
        ("1,234,567", "1234567"),
        ("0,125", "0.125"),
        ("1234,567", "1234.567"),
        ("-12,5", "-12.5"),
        ("12.5", "12.5"),
        ("1.234", "1.234"),  # a dot alone is the decimal point
        (" 12 ", "12"),
        ("3", "3"),
    ],
)
def test_normalise_decimal(text: str, expected: str) -> None:
    assert normalise_decimal(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1,234",  # a thousand, or one and a bit: the form says it is no number
        "12,500",
        "1,2,3",
        "1.234,5.6",
        "12,",
        "12 t",
        "abc",
        "",
        "1e5",
        "12,34,567",
    ],
)
def test_normalise_decimal_leaves_the_rest_for_the_form(text: str) -> None:
    assert normalise_decimal(text) == text


@given(
    # A comma before exactly three digits and nothing else is ambiguous: left out here.
    st.decimals(min_value=0, max_value=10**9, places=2)
    | st.decimals(min_value=1000, max_value=10**9, places=3)
)
def test_normalise_decimal_reads_grouped_numbers_of_either_convention(value: Decimal) -> None:
    english = f"{value:,}"
    german = english.translate(str.maketrans(",.", ".,"))
    assert Decimal(normalise_decimal(english)) == value
    assert Decimal(normalise_decimal(german)) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30 14:05", "2026-11-30T14:05"),
        ("2026-11-30T14:05:00", "2026-11-30T14:05"),
        ("2026-11-30T14:05:07", "2026-11-30T14:05:07"),
        ("30 Nov 2026 14:05", "2026-11-30T14:05"),
        ("1 Dec 2026 9:05", "2026-12-01T09:05"),
        ("30 November 2026", "2026-11-30T00:00"),
        ("30/11/2026 14:05", "2026-11-30T14:05"),
        ("05/11/2026 14:05:30", "2026-11-05T14:05:30"),  # day first, as in the portal's locale
        ("30.11.2026 14:05", "2026-11-30T14:05"),
        ("2026-11-30", "2026-11-30T00:00"),
        ("  30 Nov  2026   14:05 ", "2026-11-30T14:05"),
    ],
)
def test_normalise_moment(text: str, expected: str) -> None:
    assert normalise_moment(text) == expected
    assert forms.DateTimeField().clean(expected) == timezone.make_aware(
        datetime.fromisoformat(expected)
    )


@pytest.mark.parametrize(
    "text",
    ["11/30/2026 14:05", "30 Nov 26", "tomorrow", "", "2026-11-30T14:05+01:00", "2026-13-01"],
)
def test_normalise_moment_leaves_the_rest_for_the_form(text: str) -> None:
    assert normalise_moment(text) == text
