"""Bulk import through the portal's pages, with the worker's steps run in the test: upload,
check, preview, import, the re-upload, the files real plants have, and the bad ones."""

import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from auditlog.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from batches import imports
from batches.models import (
    BatchImport,
    Facility,
    FeedstockType,
    ImportStatus,
    ProductionBatch,
    SyncStatus,
)
from batches.spreadsheet import TEMPLATE_COLUMNS
from portal.models import IsometricAccount
from tests.factories import (
    make_account,
    make_batch,
    make_facility,
    make_feedstock_type,
    make_user,
)

pytestmark = pytest.mark.django_db

HEADERS = [column.header for column in TEMPLATE_COLUMNS]
STARTED = timezone.localtime() - timedelta(days=3)


def row(**values: str) -> dict[str, str]:
    """A valid row of the template, by header."""
    defaults = {
        "Supplier reference": "",
        "Display name": "",
        "Facility": "Kiln A",
        "Feedstock types": "Wood chips",
        "Production started": f"{STARTED:%Y-%m-%d %H:%M}",
        "Production ended": f"{STARTED + timedelta(hours=8):%Y-%m-%d %H:%M}",
        "Mass": "12.5",
        "Unit": "tonne",
        "Standard deviation": "",
    }
    return defaults | values


def csv_file(rows: list[dict[str, str]], delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, HEADERS, delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode(encoding)


def upload(client: Client, content: bytes, name: str = "batches.csv", **fields: Any) -> BatchImport:
    response = client.post(
        reverse("batches:imports"), {"file": SimpleUploadedFile(name, content), **fields}
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    batch_import = BatchImport.objects.latest("created_at")
    assert response["Location"] == batch_import.get_absolute_url()
    return batch_import


def work() -> BatchImport:
    """What the worker does: check or import every import waiting for it."""
    while imports.process_due():
        pass
    return BatchImport.objects.latest("created_at")


def imported_references() -> list[str]:
    return sorted(ProductionBatch.objects.values_list("supplier_reference_id", flat=True))


def test_upload_check_preview_and_import(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    content = csv_file(
        [
            row(**{"Supplier reference": "R-1"}),
            row(),
            row(Mass="lots", **{"Supplier reference": "R-3"}),
        ]
    )
    batch_import = upload(operator_client, content)
    assert batch_import.status == ImportStatus.CHECKING
    page = operator_client.get(batch_import.get_absolute_url()).content.decode()
    assert "Checking the rows" in page and 'hx-trigger="every 1s"' in page

    checked = work()

    assert (checked.status, checked.new, checked.same, checked.conflicting, checked.invalid) == (
        ImportStatus.CHECKED,
        2,
        0,
        0,
        1,
    )
    assert ProductionBatch.objects.count() == 0  # nothing before the operator says so
    [rejected] = checked.rejected_rows.all()
    assert (rejected.number, rejected.conflicting) == (4, False)
    assert rejected.errors == {"Mass": ["Enter a number."]}
    page = operator_client.get(checked.get_absolute_url()).content.decode()
    assert "Import 2 new batches" in page and "Enter a number." in page

    response = operator_client.post(reverse("batches:import_start", args=[checked.pk]))
    assert response.status_code == 302
    done = work()

    assert (done.status, done.imported) == (ImportStatus.IMPORTED, 2)
    batches = ProductionBatch.objects.order_by("supplier_reference_id")
    assert [batch.supplier_reference_id[:4] for batch in batches] == ["IMP-", "R-1"]
    for batch in batches:
        [entry] = LogEntry.objects.get_for_object(batch)
        assert (entry.additional_data["via"], entry.actor) == ("import", batch.created_by)
        assert batch.sync_status == SyncStatus.PENDING and batch.next_attempt_at is not None
        assert batch.created_by is not None and batch.created_by.username == "olivia"
        assert list(batch.feedstock_types.all()) == [feedstock_type]
        assert batch.mass_magnitude == Decimal("12.5")


def test_the_same_file_uploaded_again_creates_nothing_twice(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    content = csv_file([row(), row(Mass="7"), row(Mass="7")])  # two identical rows: two batches
    upload(operator_client, content)
    work()
    operator_client.post(reverse("batches:import_start", args=[work().pk]))
    work()
    first = imported_references()
    assert len(first) == 3

    again = upload(operator_client, content)
    checked = work()

    assert (checked.new, checked.same, checked.invalid) == (0, 3, 0)
    operator_client.post(reverse("batches:import_start", args=[again.pk]))
    assert work().imported == 0
    assert imported_references() == first


def test_a_corrected_file_keeps_the_rows_already_imported(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    good, bad = row(Mass="3"), row(Mass="-1")
    upload(operator_client, csv_file([good, bad]))
    operator_client.post(reverse("batches:import_start", args=[work().pk]))
    work()

    upload(operator_client, csv_file([good, row(Mass="1")]))
    checked = work()

    assert (checked.new, checked.same, checked.invalid) == (1, 1, 0)


def test_a_reference_in_the_portal_with_other_values_conflicts(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    make_batch(facility, [feedstock_type], supplier_reference_id="R-9", mass_magnitude="99")
    content = csv_file(
        [
            row(**{"Supplier reference": "R-9"}),
            row(**{"Supplier reference": "r-2"}),
            row(**{"Supplier reference": "R-2"}),
        ]
    )
    upload(operator_client, content)

    checked = work()

    assert (checked.new, checked.conflicting, checked.invalid) == (1, 1, 1)
    kinds = {rejected.number: rejected.conflicting for rejected in checked.rejected_rows.all()}
    assert kinds == {2: True, 4: False}


def test_real_files_semicolons_decimal_commas_windows_1252_and_the_portals_dates(
    operator_client: Client, account: IsometricAccount, feedstock_type: FeedstockType
) -> None:
    make_facility("Kiln Ü", account=account)
    started = f"{STARTED:%-d %b %Y %H:%M}"
    ended = f"{STARTED + timedelta(hours=2):%-d %b %Y %H:%M}"
    content = csv_file(
        [
            row(
                Facility="Kiln Ü",
                Mass="12,75",
                **{"Production started": started, "Production ended": ended},
            )
        ],
        delimiter=";",
        encoding="cp1252",
    )
    upload(operator_client, content + b";;;\r\n\r\n")

    checked = work()

    assert (checked.new, checked.invalid) == (1, 0), list(
        checked.rejected_rows.values_list("errors", flat=True)
    )


def test_an_excel_file_with_date_cells_and_number_cells(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADERS)
    naive = STARTED.replace(tzinfo=None, second=0, microsecond=0)
    sheet.append(
        ["X-1", "", "Kiln A", "Wood chips", naive, naive + timedelta(hours=5), 12.5, "tonne", 0.25]
    )
    data = io.BytesIO()
    workbook.save(data)
    upload(operator_client, data.getvalue(), name="season.xlsx")
    operator_client.post(reverse("batches:import_start", args=[work().pk]))

    assert work().imported == 1

    batch = ProductionBatch.objects.get()
    assert timezone.localtime(batch.started_at).replace(tzinfo=None) == naive
    assert (batch.mass_magnitude, batch.mass_standard_deviation) == (
        Decimal("12.5"),
        Decimal("0.25"),
    )


def test_unusual_values_need_the_operators_word(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    content = csv_file([row(Mass="900")])
    upload(operator_client, content)
    checked = work()
    assert checked.invalid == 1
    [reason] = checked.rejected_rows.get().errors[""][1:]
    assert "over 500 tonnes" in reason

    upload(operator_client, content, confirm_unusual="on")
    assert work().new == 1


def test_a_reference_differing_only_in_case_needs_the_operators_word_too(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    make_batch(facility, [feedstock_type], supplier_reference_id="kiln-a-7")
    content = csv_file([row(**{"Supplier reference": "KILN-A-7"})])
    upload(operator_client, content)
    checked = work()
    assert checked.invalid == 1
    [reason] = checked.rejected_rows.get().errors[""][1:]
    assert "“kiln-a-7”, which differs from this one only in capital letters" in reason

    upload(operator_client, content, confirm_unusual="on")
    assert work().new == 1


def test_rejected_rows_download_with_their_reasons_ready_to_fix(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    upload(operator_client, csv_file([row(Facility="=cmd|' /C calc'!A0", Mass="x")]))
    checked = work()

    response = operator_client.get(reverse("batches:import_rejected", args=[checked.pk]))

    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    [record] = list(csv.DictReader(io.StringIO(text)))
    assert record["Facility"] == "'=cmd|' /C calc'!A0"  # a formula no spreadsheet runs
    assert "Mass: Enter a number." in record["Reason"]
    assert "Facility: " in record["Reason"]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "photo.csv", "not a spreadsheet"),
        (b"Facility,Mass\nKiln A,3\n", "short.csv", "Production started"),
        (b"", "empty.csv", "empty"),
    ],
)
def test_a_bad_file_says_why_on_its_page(
    operator_client: Client, facility: Facility, content: bytes, name: str, message: str
) -> None:
    upload(operator_client, content or b" ", name=name)
    checked = work()
    assert checked.status == ImportStatus.UNREADABLE
    assert message.lower() in checked.message.lower()
    page = operator_client.get(checked.get_absolute_url()).content.decode()
    assert checked.message in page.replace("&#x27;", "'").replace("&quot;", '"')


def test_a_file_over_the_limit_is_refused_at_the_field(
    operator_client: Client, facility: Facility, settings: Any
) -> None:
    settings.BATCH_IMPORT_MAX_BYTES = 100
    response = operator_client.post(
        reverse("batches:imports"),
        {"file": SimpleUploadedFile("big.csv", csv_file([row()] * 5))},
    )
    assert response.status_code == 200
    assert "larger than" in response.content.decode()
    assert not BatchImport.objects.exists()


def test_templates_name_the_accounts_own_facility(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    response = operator_client.get(reverse("batches:import_template"), {"format": "csv"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    header, example = list(csv.reader(io.StringIO(text)))
    assert header == HEADERS
    assert example[HEADERS.index("Facility")] == "Kiln A"

    response = operator_client.get(reverse("batches:import_template"), {"format": "xlsx"})
    content = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    assert [cell.value for cell in sheet[1]] == HEADERS


def test_imports_are_sealed_off_between_accounts(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    other = make_account("Retorts Ltd")
    stranger = make_user("sam", operator=True)
    other.members.add(stranger)
    theirs = BatchImport.objects.create(account=other, created_by=stranger, file_name="x.csv")
    for name in ("batches:import", "batches:import_rejected"):
        assert operator_client.get(reverse(name, args=[theirs.pk])).status_code == 404
    assert (
        operator_client.post(reverse("batches:import_start", args=[theirs.pk])).status_code == 404
    )
    page = operator_client.get(reverse("batches:imports")).content.decode()
    assert "x.csv" not in page


def test_a_worker_that_dies_leaves_the_import_to_another(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    upload(operator_client, csv_file([row()]))
    assert imports._claim() is not None
    assert imports._claim() is None  # held by the first
    BatchImport.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))

    assert work().status == ImportStatus.CHECKED


@pytest.mark.parametrize("chosen", ["abc", "99999999999999999999", "-1", "\x00"])
def test_a_template_for_an_account_that_is_no_account_is_the_users_own(
    operator_client: Client, facility: Facility, chosen: str
) -> None:
    response = operator_client.get(reverse("batches:import_template"), {"account": chosen})
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    assert "Kiln A" in text


def test_a_row_whose_facility_is_removed_after_the_check_is_left_out(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    spare = make_facility("Kiln B", account=facility.account)
    upload(operator_client, csv_file([row(), row(Facility="Kiln B", Mass="3")]))
    checked = work()
    assert checked.new == 2
    spare.delete()
    operator_client.post(reverse("batches:import_start", args=[checked.pk]))

    done = work()

    assert (done.status, done.imported, done.recorded_meanwhile) == (ImportStatus.IMPORTED, 1, 1)
    assert ProductionBatch.objects.get().facility == facility


def test_another_accounts_facility_or_feedstock_type_is_no_choice(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    other = make_account("Retorts Ltd")
    theirs = make_facility("Their kiln", account=other)
    their_feedstock = make_feedstock_type("Their straw", account=other)
    upload(
        operator_client,
        csv_file(
            [
                row(Facility="Their kiln"),
                row(Facility=theirs.isometric_id, Mass="2"),
                row(Facility=str(theirs.pk), Mass="3"),
                row(**{"Feedstock types": str(their_feedstock.pk)}, Mass="4"),
                row(**{"Feedstock types": f"Wood chips, {their_feedstock.isometric_id}"}),
            ]
        ),
    )

    checked = work()

    assert (checked.new, checked.invalid) == (0, 5)
    assert [sorted(rejected.errors) for rejected in checked.rejected_rows.all()] == [
        ["Facility"],
        ["Facility"],
        ["Facility"],
        ["Feedstock types"],
        ["Feedstock types"],
    ]
