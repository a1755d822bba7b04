import codecs
import csv
import io
import re
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape
from typing import Any

import openpyxl
import pytest
from django.db import connection
from django.http import FileResponse, StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl.worksheet.worksheet import Worksheet

from batches import exports, import_files, spreadsheet
from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
from batches.spreadsheet import EXPORT_COLUMNS
from portal.models import IsometricAccount
from tests.factories import (
    log_in,
    make_account,
    make_batch,
    make_facility,
    make_feedstock_type,
    make_user,
)

pytestmark = pytest.mark.django_db

EXPORT = reverse("batches:export")
LIST = reverse("batches:list")
HEADER = [column.header for column in EXPORT_COLUMNS]
COLUMN = {column.key: index for index, column in enumerate(EXPORT_COLUMNS)}


def csv_rows(body: bytes) -> list[list[str]]:
    """The CSV file's rows, header first; it must be UTF-8 with a byte-order mark."""
    assert body.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def xlsx_sheet(body: bytes) -> Worksheet:
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    assert isinstance(sheet, Worksheet)
    return sheet


def xlsx_rows(body: bytes) -> list[list[Any]]:
    return [list(row) for row in xlsx_sheet(body).iter_rows(values_only=True)]


def exported(client: Client, file_format: str, **params: str) -> list[list[Any]]:
    """The rows of the export in `file_format`, header first."""
    response = client.get(EXPORT, {**params, "format": file_format})
    assert response.status_code == 200
    body = response.getvalue()
    return csv_rows(body) if file_format == "csv" else xlsx_rows(body)


def references(client: Client, file_format: str = "csv", **params: str) -> list[str]:
    return [row[0] for row in exported(client, file_format, **params)[1:]]


def listed(client: Client, **params: str) -> list[str]:
    """The references the list's page shows for the same parameters."""
    response = client.get(LIST, params)
    assert response.status_code == 200
    return [batch.supplier_reference_id for batch in response.context["page"].batches]


@pytest.fixture
def synced(facility: Facility, feedstock_type: FeedstockType) -> ProductionBatch:
    """A batch Isometric holds, with two feedstock types and every value set."""
    husk = make_feedstock_type("Husk", account=facility.account)
    return make_batch(
        facility,
        [feedstock_type, husk],
        started_at=datetime(2026, 3, 15, 8, 0, tzinfo=UTC),
        ended_at=datetime(2026, 3, 15, 14, 30, tzinfo=UTC),
        supplier_reference_id="KILN-A-0001",
        display_name="March run",
        mass_magnitude=Decimal("100.000000"),
        mass_standard_deviation=Decimal("0.250000"),
        sync_status=SyncStatus.SYNCED,
        remote_id="ptb_01HZX3K9Q8M7N6B5V4C3",
        uploaded_at=datetime(2026, 3, 15, 15, 0, 7, tzinfo=UTC),
    )


@pytest.fixture
def pending(facility: Facility, feedstock_type: FeedstockType) -> ProductionBatch:
    """A batch not yet sent: no display name, deviation, Isometric id or upload time."""
    return make_batch(
        facility,
        [feedstock_type],
        started_at=datetime(2026, 3, 10, 9, 15, tzinfo=UTC),
        ended_at=datetime(2026, 3, 10, 18, 45, tzinfo=UTC),
        supplier_reference_id="KILN-A-0002",
        mass_magnitude=Decimal("0.000001"),
    )


def test_csv_has_the_export_columns_and_a_row_per_batch(
    operator_client: Client, synced: ProductionBatch, pending: ProductionBatch
) -> None:
    response = operator_client.get(EXPORT, {"format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    today = timezone.localdate()
    assert response["Content-Disposition"] == f'attachment; filename="batches-{today}.csv"'
    body = response.getvalue()
    assert csv_rows(body) == [
        HEADER,
        [
            "KILN-A-0001",
            "March run",
            "Kiln A",
            "Husk; Wood chips",
            "2026-03-15 08:00",
            "2026-03-15 14:30",
            "100",
            "tonne",
            "0.25",
            "Kilns Ltd",
            "Synced",
            "ptb_01HZX3K9Q8M7N6B5V4C3",
            "2026-03-15 15:00:07",
        ],
        [
            "KILN-A-0002",
            "",
            "Kiln A",
            "Wood chips",
            "2026-03-10 09:15",
            "2026-03-10 18:45",
            "0.000001",
            "tonne",
            "",
            "Kilns Ltd",
            "Pending",
            "",
            "",
        ],
    ]
    assert body.count(b"\r\n") == 3  # comma separated, a line per row


def test_xlsx_has_the_same_rows_as_typed_cells(
    operator_client: Client, synced: ProductionBatch, pending: ProductionBatch
) -> None:
    response = operator_client.get(EXPORT, {"format": "xlsx"})

    assert response.status_code == 200
    assert response["Content-Type"] == spreadsheet.XLSX_TYPE
    today = timezone.localdate()
    assert response["Content-Disposition"] == f'attachment; filename="batches-{today}.xlsx"'
    sheet = xlsx_sheet(response.getvalue())
    assert [list(row) for row in sheet.iter_rows(values_only=True)] == [
        HEADER,
        [
            "KILN-A-0001",
            "March run",
            "Kiln A",
            "Husk; Wood chips",
            datetime(2026, 3, 15, 8, 0),
            datetime(2026, 3, 15, 14, 30),
            100,
            "tonne",
            0.25,
            "Kilns Ltd",
            "Synced",
            "ptb_01HZX3K9Q8M7N6B5V4C3",
            datetime(2026, 3, 15, 15, 0, 7),
        ],
        [
            "KILN-A-0002",
            None,
            "Kiln A",
            "Wood chips",
            datetime(2026, 3, 10, 9, 15),
            datetime(2026, 3, 10, 18, 45),
            0.000001,
            "tonne",
            None,
            "Kilns Ltd",
            "Pending",
            None,
            None,
        ],
    ]
    started, mass, uploaded = (
        sheet.cell(2, COLUMN[key] + 1) for key in ("started_at", "mass_magnitude", "uploaded_at")
    )
    assert (started.data_type, started.number_format) == ("d", "yyyy-mm-dd hh:mm")
    assert (uploaded.data_type, uploaded.number_format) == ("d", "yyyy-mm-dd hh:mm:ss")
    assert mass.data_type == "n"


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_dates_are_in_the_portal_time_zone(
    operator_client: Client, settings: Any, file_format: str
) -> None:
    settings.TIME_ZONE = "Pacific/Auckland"  # UTC+13 in January
    make_batch(
        started_at=datetime(2026, 1, 15, 22, 30, tzinfo=UTC),
        ended_at=datetime(2026, 1, 16, 4, 30, 15, tzinfo=UTC),
    )
    [_, row] = exported(operator_client, file_format)
    started, ended = row[COLUMN["started_at"]], row[COLUMN["ended_at"]]
    if file_format == "csv":
        assert (started, ended) == ("2026-01-16 11:30", "2026-01-16 17:30:15")
    else:
        assert (started, ended) == (
            datetime(2026, 1, 16, 11, 30),
            datetime(2026, 1, 16, 17, 30, 15),
        )


def test_masses_are_written_plainly(operator_client: Client) -> None:
    make_batch(mass_magnitude=Decimal("999999999.999999"), mass_standard_deviation=Decimal(0))
    make_batch(mass_magnitude=Decimal("1E+2"), started_at=timezone.now() - timedelta(days=2))
    rows = exported(operator_client, "csv")[1:]
    masses = [
        (row[COLUMN["mass_magnitude"]], row[COLUMN["mass_standard_deviation"]]) for row in rows
    ]
    assert masses == [("999999999.999999", "0"), ("100", "")]


# Each a display name and a reference an attacker might choose, and what the file holds.
FORMULAS = [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ("+1+1", "'+1+1"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("a=1+1", "a=1+1"),
]


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_text_a_spreadsheet_would_run_gets_an_apostrophe(
    operator_client: Client, file_format: str
) -> None:
    now = timezone.now()
    for n, (text, _) in enumerate(FORMULAS):
        make_batch(display_name=text, supplier_reference_id=text, started_at=now - timedelta(n))
    rows = exported(operator_client, file_format)[1:]
    expected = [written for _, written in FORMULAS]
    if file_format == "xlsx":
        expected = [text.replace("\r", "\n") for text in expected]  # as XML reads it back
    assert [row[COLUMN["display_name"]] for row in rows] == expected
    assert [row[COLUMN["supplier_reference_id"]] for row in rows] == expected


def test_xlsx_writes_text_as_strings_never_formulas_or_errors(operator_client: Client) -> None:
    link = make_feedstock_type('=HYPERLINK("http://example.com")')
    make_batch(
        feedstock_types=[link], display_name="#N/A", supplier_reference_id="=1+1", mass_unit="-kg"
    )
    body = operator_client.get(EXPORT, {"format": "xlsx"}).getvalue()

    sheet = xlsx_sheet(body)
    text_cells = [sheet.cell(2, index + 1) for index, column in enumerate(EXPORT_COLUMNS)]
    assert {cell.value: cell.data_type for cell in text_cells if isinstance(cell.value, str)} == {
        "'=1+1": "s",
        "#N/A": "s",
        "Kilns Ltd": "s",
        "'-kg": "s",
        "Kiln A": "s",
        '\'=HYPERLINK("http://example.com")': "s",
        "Pending": "s",
    }
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml
    assert 't="e"' not in xml


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_negative_numbers_stay_numbers(operator_client: Client, file_format: str) -> None:
    make_batch(mass_magnitude=Decimal("-2.5"), mass_standard_deviation=Decimal("-0.1"))
    [_, row] = exported(operator_client, file_format)
    mass, deviation = row[COLUMN["mass_magnitude"]], row[COLUMN["mass_standard_deviation"]]
    assert (mass, deviation) == (("-2.5", "-0.1") if file_format == "csv" else (-2.5, -0.1))


def test_xlsx_leaves_out_characters_excel_cannot_hold(operator_client: Client) -> None:
    make_batch(display_name="Kiln\x01 run", supplier_reference_id="\x02=1+1")
    [_, xlsx_row] = exported(operator_client, "xlsx")
    [_, csv_row] = exported(operator_client, "csv")
    assert xlsx_row[:2] == ["'=1+1", "Kiln run"]
    assert csv_row[:2] == ["\x02=1+1", "Kiln\x01 run"]


@pytest.fixture
def varied(facility: Facility, feedstock_type: FeedstockType) -> dict[str, Any]:
    """Batches across facilities, feedstock types, statuses and days; one voided."""
    south = make_facility("South", account=facility.account)
    husk = make_feedstock_type("Husk", account=facility.account)
    day = timezone.make_aware(datetime(2026, 3, 15, 12))
    make_batch(facility, [feedstock_type], started_at=day, supplier_reference_id="REF-a")
    make_batch(
        south,
        [feedstock_type, husk],
        started_at=day - timedelta(days=10),
        supplier_reference_id="REF-b",
        display_name="Southern husk",
    )
    make_batch(
        facility,
        [husk],
        started_at=day - timedelta(days=20),
        supplier_reference_id="REF-c",
        sync_status=SyncStatus.FAILED,
    )
    make_batch(
        facility,
        [husk],
        started_at=day - timedelta(days=5),
        supplier_reference_id="REF-void",
        sync_status=SyncStatus.VOIDED,
    )
    return {"north": str(facility.pk), "south": str(south.pk), "husk": str(husk.pk)}


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_the_list_s_search_and_filters_apply(
    operator_client: Client, varied: dict[str, str], file_format: str
) -> None:
    def found(**params: str) -> list[str]:
        return references(operator_client, file_format, **params)

    assert found() == ["REF-a", "REF-b", "REF-c"]
    assert found(q="southern") == ["REF-b"]
    assert found(facility=varied["north"]) == ["REF-a", "REF-c"]
    assert found(feedstock_type=varied["husk"]) == ["REF-b", "REF-c"]
    assert found(sync_status="failed") == ["REF-c"]
    assert found(sync_status="voided") == ["REF-void"]
    assert found(started_from="2026-03-05", started_to="2026-03-15") == ["REF-a", "REF-b"]
    assert found(q="ref", facility=varied["north"], sync_status="pending") == ["REF-a"]


@pytest.mark.parametrize(
    "params",
    [
        {"q": "ref-b", "feedstock_type": "husk"},
        {"facility": "999999"},
        {"facility": "fcl_unknown", "q": "REF-c"},
        {"feedstock_type": "<script>"},
        {"sync_status": "exploded"},
        {"started_from": "2026-13-45"},
        {"started_to": "yesterday"},
        {"started_from": "2026-03-15", "started_to": "2026-03-01"},
        {"started_from": "0001-01-01"},
        {"q": "x" * 10_000},
        {"q": "nul\x00"},
        {"after": "x", "before": "y"},
    ],
)
def test_bad_parameters_are_ignored_as_the_list_ignores_them(
    operator_client: Client, varied: dict[str, str], params: dict[str, str]
) -> None:
    assert references(operator_client, **params) == listed(operator_client, **params)


@pytest.mark.parametrize("params", [{}, {"format": "pdf"}, {"format": ["csv", "pdf"]}])
def test_an_unknown_format_is_a_bad_request(
    operator_client: Client, params: dict[str, Any]
) -> None:
    make_batch()
    response = operator_client.get(EXPORT, params)
    assert response.status_code == 400
    assert "Ask for format=csv or format=xlsx." in response.content.decode()


def test_only_get_is_answered(operator_client: Client) -> None:
    assert operator_client.post(f"{EXPORT}?format=csv").status_code == 405


@pytest.fixture
def other_account() -> IsometricAccount:
    """Another organisation, with a facility, a feedstock type and a batch."""
    other = make_account("Brockwell Char")
    make_batch(
        make_facility("Brockwell kiln", account=other),
        [make_feedstock_type("Brockwell straw", account=other)],
        supplier_reference_id="BROCKWELL-0001",
    )
    return other


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_only_the_user_s_accounts_batches_are_exported(
    operator_client: Client,
    synced: ProductionBatch,
    other_account: IsometricAccount,
    file_format: str,
) -> None:
    other_facility = other_account.facilities.get()
    for params in ({}, {"facility": str(other_facility.pk)}, {"q": "BROCKWELL"}):
        rows = exported(operator_client, file_format, **params)
        text = repr(rows)
        assert "Brockwell" not in text and "BROCKWELL" not in text
    assert references(operator_client, file_format) == ["KILN-A-0001"]


def test_a_user_in_no_account_gets_the_header_only(client: Client, synced: ProductionBatch) -> None:
    log_in(client, make_user("ozzy", operator=True))
    assert exported(client, "csv") == [HEADER]


def test_a_superuser_exports_every_account_s_batches(
    client: Client, synced: ProductionBatch, other_account: IsometricAccount
) -> None:
    log_in(client, make_user("root", is_superuser=True, is_staff=True))
    assert references(client, "xlsx") == ["BROCKWELL-0001", "KILN-A-0001"]


def test_the_empty_list_is_the_header_alone(operator_client: Client) -> None:
    csv_response = operator_client.get(EXPORT, {"format": "csv"})
    assert csv_response.getvalue() == codecs.BOM_UTF8 + ",".join(HEADER).encode() + b"\r\n"
    assert exported(operator_client, "xlsx") == [HEADER]


def test_csv_is_streamed_in_pieces(
    operator_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spreadsheet, "CSV_PIECE", 500)
    for _ in range(30):
        make_batch()
    response = operator_client.get(EXPORT, {"format": "csv"})

    assert isinstance(response, StreamingHttpResponse)
    assert not isinstance(response, FileResponse)
    pieces = list(response.streaming_content)
    assert len(pieces) > 5
    assert pieces[0] == codecs.BOM_UTF8 + ",".join(HEADER).encode() + b"\r\n"
    assert len(csv_rows(b"".join(pieces))) == 31


def test_xlsx_is_streamed_from_a_file(operator_client: Client) -> None:
    make_batch()
    response = operator_client.get(EXPORT, {"format": "xlsx"})

    assert isinstance(response, FileResponse)
    body = response.getvalue()
    assert int(response["Content-Length"]) == len(body)  # the file's size, known up front
    assert body.startswith(b"PK")  # a zip archive


def test_reads_all_batches_in_chunks_in_the_list_s_order(
    operator_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "CHUNK_SIZE", 3)
    day = timezone.now() - timedelta(days=1)
    # Several batches share a start, so chunks end between rows of the same moment.
    created = [
        make_batch(started_at=day - timedelta(hours=n // 4), supplier_reference_id=f"REF-{n:02d}")
        for n in range(10)
    ]
    in_list_order = sorted(created, key=lambda batch: (batch.started_at, batch.pk), reverse=True)
    expected = [batch.supplier_reference_id for batch in in_list_order]
    with CaptureQueriesContext(connection) as reads:
        assert references(operator_client, "csv") == expected
    chunked = len(reads)
    assert references(operator_client, "xlsx") == expected
    ProductionBatch.objects.all().delete()
    with CaptureQueriesContext(connection) as reads:
        assert references(operator_client, "csv") == []
    # Chunks of 3, 3, 3 and 1: a query each, and one each for their feedstock types; the empty
    # list is one query.
    assert chunked == len(reads) + 7


@pytest.mark.parametrize("sort", ["mass", "-mass", "facility", "-status", "start"])
def test_an_export_is_in_the_list_s_order(
    operator_client: Client, monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    """Read in chunks that end between batches of the same mass, facility and status."""
    monkeypatch.setattr(exports, "CHUNK_SIZE", 2)
    north, south = make_facility("North"), make_facility("South")
    day = timezone.now() - timedelta(days=1)
    for n in range(7):
        batch = make_batch(
            [south, north][n % 2],
            started_at=day - timedelta(hours=n % 3),
            mass_magnitude=Decimal(n % 3 + 1),
            supplier_reference_id=f"REF-{n}",
        )
        if n % 3 == 0:
            ProductionBatch.objects.filter(pk=batch.pk).update(
                sync_status=SyncStatus.FAILED, next_attempt_at=None
            )
    shown = listed(operator_client, sort=sort)
    assert len(shown) == 7
    assert references(operator_client, "csv", sort=sort) == shown
    assert references(operator_client, "xlsx", sort=sort) == shown


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_queries_do_not_grow_with_the_batches(operator_client: Client, file_format: str) -> None:
    def add_batches(count: int) -> None:
        for n in range(count):
            facility = make_facility(f"Kiln {n}")
            make_batch(
                facility, [make_feedstock_type(f"Wood {n}"), make_feedstock_type(f"Husk {n}")]
            )

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = operator_client.get(EXPORT, {"format": file_format})
            response.getvalue()
        return len(captured)

    add_batches(2)
    few = queries()
    add_batches(20)
    assert queries() == few


def test_list_links_to_its_export_with_its_filters(
    operator_client: Client, varied: dict[str, str]
) -> None:
    params = {"q": "ref", "facility": varied["north"]}
    page = operator_client.get(LIST, params).content.decode()
    fragment = operator_client.get(LIST, params, headers={"HX-Request": "true"}).content.decode()
    for html in (page, fragment):
        links = re.findall(r'href="(/batches/export/[^"]*)">Download (CSV|XLSX)<', html)
        query = f"q=ref&amp;facility={varied['north']}"
        assert links == [
            (f"/batches/export/?{query}&amp;format=csv", "CSV"),
            (f"/batches/export/?{query}&amp;format=xlsx", "XLSX"),
        ]
    href = re.findall(r'href="(/batches/export/[^"]*)">Download XLSX<', page)[0]
    response = operator_client.get(unescape(href))
    assert [row[0] for row in xlsx_rows(response.getvalue())[1:]] == ["REF-a", "REF-c"]


def test_list_links_export_the_whole_list_from_any_page(
    operator_client: Client, settings: Any
) -> None:
    settings.BATCH_PAGE_SIZE = 2
    for n in range(3):
        make_batch(started_at=timezone.now() - timedelta(days=n + 1))
    first = operator_client.get(LIST).content.decode()
    after = re.search(r'rel="next" href="\?after=([\w-]+)"', first)
    assert after
    second = operator_client.get(LIST, {"after": after[1]}).content.decode()
    assert 'href="/batches/export/?format=csv">Download CSV<' in second
    assert len(references(operator_client)) == 3


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_an_export_reads_back_as_an_import(
    operator_client: Client, synced: ProductionBatch, file_format: str
) -> None:
    ProductionBatch.objects.filter(pk=synced.pk).update(
        display_name="=cmd|' /C calc'!A0", mass_unit="-kg"
    )
    body = operator_client.get(EXPORT, {"format": file_format}).getvalue()

    [row] = list(import_files.iter_table(io.BytesIO(body), f"batches.{file_format}").rows)
    values = row.values
    assert values["supplier_reference_id"] == "KILN-A-0001"
    assert values["display_name"] == "=cmd|' /C calc'!A0"
    assert values["mass_unit"] == "-kg"
    assert values["feedstock_types"] == "Husk; Wood chips"
    assert import_files.normalise_moment(values["started_at"]) == "2026-03-15T08:00"
    assert import_files.normalise_decimal(values["mass_magnitude"]) == "100"
