"""An operator imports a season of batches from a spreadsheet, fixes the rejected rows and
imports them too."""

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path

from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from batches.models import Facility, FeedstockType, ProductionBatch
from batches.spreadsheet import TEMPLATE_COLUMNS
from portal.models import IsometricAccount
from tests.e2e.conftest import log_in
from tests.e2e.test_batches import Shoot


def season(path: Path, started: datetime, masses: list[str], feedstock: str) -> Path:
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";")
    writer.writerow(column.header for column in TEMPLATE_COLUMNS)
    for day, mass in enumerate(masses):
        start = started + timedelta(days=day)
        writer.writerow(
            [
                "",
                "",
                "Kiln A",
                feedstock,
                f"{start:%d %b %Y %H:%M}",
                f"{start + timedelta(hours=8):%d %b %Y %H:%M}",
                mass,
                "tonne",
                "",
            ]
        )
    path.write_text(text.getvalue(), encoding="cp1252")
    return path


def test_import_a_season_fix_the_rejected_rows_and_import_them(
    page: Page,
    operator: User,
    account: IsometricAccount,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
    worker: None,
    shoot: Shoot,
    tmp_path: Path,
) -> None:
    masses = [f"{10 + day},5" for day in range(40)]
    # One start for both files: their rows' times must not move with the clock between them.
    started = timezone.localtime() - timedelta(days=60)
    masses[7] = "heavy"
    log_in(page, "olivia")
    page.get_by_role("link", name="Import").click()
    page.get_by_label("Spreadsheet").set_input_files(
        season(tmp_path / "season.csv", started, masses, known_feedstock_type.name)
    )
    page.get_by_role("button", name="Upload and check").click()

    expect(page.locator(".counts")).to_contain_text("New39", timeout=15_000, use_inner_text=False)
    expect(page.locator("table.rejected")).to_contain_text("Enter a number.")
    shoot(page, "import-preview")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download them with the reasons (CSV)").click()
    rejected = download.value.path().read_text(encoding="utf-8-sig")
    assert "heavy" in rejected and "Mass: Enter a number." in rejected
    page.get_by_role("button", name="Import 39 new batches").click()
    expect(page.get_by_role("status").first).to_contain_text("Imported 39 batches", timeout=15_000)
    assert ProductionBatch.objects.count() == 39

    masses[7] = "17,5"
    page.get_by_role("link", name="All imports").click()
    page.get_by_label("Spreadsheet").set_input_files(
        season(tmp_path / "fixed.csv", started, masses, known_feedstock_type.name)
    )
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_role("button", name="Import 1 new batch")).to_be_visible(timeout=15_000)
    page.get_by_role("button", name="Import 1 new batch").click()
    expect(page.get_by_role("status").first).to_contain_text("Imported 1 batch", timeout=15_000)
    assert ProductionBatch.objects.count() == 40
