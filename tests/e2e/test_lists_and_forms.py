"""An operator sorts the list by its column headers, finds a batch without typing its accents,
records a batch from their last one, and reads the portal's times in their own zone."""

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_django.fixtures import Settings

from batches.models import Facility, FeedstockType, ProductionBatch
from portal.models import IsometricAccount
from tests.e2e.conftest import log_in
from tests.factories import make_batch, make_facility, make_feedstock_type

Shoot = Callable[[Page, str], None]


def column(page: Page, number: int) -> list[str]:
    return page.locator(f"#results tbody tr td:nth-child({number})").all_inner_texts()


@pytest.fixture
def varied(account: IsometricAccount, operator: User) -> list[ProductionBatch]:
    """Seven batches at two facilities, of different masses, a day apart."""
    north, south = make_facility("North kiln", account), make_facility("South kiln", account)
    wood = make_feedstock_type("Wood", account)
    return [
        make_batch(
            [south, north][n % 2],
            [wood],
            account=account,
            supplier_reference_id=f"SORT-{n}",
            mass_magnitude=Decimal(10 + (n * 3) % 7),
            started_at=timezone.now() - timedelta(days=n + 1),
            created_by=operator,
        )
        for n in range(7)
    ]


def test_sort_by_the_column_headers_and_page_in_that_order(
    page: Page, operator: User, varied: list[ProductionBatch], shoot: Shoot, settings: Settings
) -> None:
    settings.BATCH_PAGE_SIZE = 4
    log_in(page, "olivia")
    page.get_by_role("link", name="Batches", exact=True).click()
    expect(page.locator("#results .summary")).to_have_text("7 batches")
    header = page.locator("#results thead th", has_text="Mass")

    page.get_by_role("link", name="Mass").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    by_mass = sorted(varied, key=lambda b: (b.mass_magnitude, b.started_at, b.pk), reverse=True)
    masses = [f"{b.mass_magnitude:g} tonne" for b in by_mass]
    assert column(page, 4) == masses[:4]
    page.get_by_role("link", name="Next").click()
    expect(page.locator("#results tbody tr")).to_have_count(3)
    assert column(page, 4) == masses[4:]
    assert "sort=-mass" in page.url and "after=" in page.url

    page.get_by_role("link", name="Mass").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert column(page, 4) == masses[::-1][:4]
    shoot(page, "list-sorted-by-mass")

    # The filters' Sort field does the same, and the headers follow it.
    page.get_by_label("Sort").select_option(label="Facility, Z to A")
    facility_header = page.locator("#results thead th", has_text="Facility")
    expect(facility_header).to_have_attribute("aria-sort", "descending")
    assert column(page, 2) == ["South kiln"] * 4
    page.get_by_label("Search").fill("sort-")
    expect(page.locator("#results tbody tr")).to_have_count(4)
    assert column(page, 2) == ["South kiln"] * 4
    assert "sort=-facility" in page.url


def test_search_ignores_accents_and_case(
    page: Page, operator: User, account: IsometricAccount, known_facility: Facility
) -> None:
    make_batch(known_facility, account=account, supplier_reference_id="ÉLAN-1")
    make_batch(known_facility, account=account, supplier_reference_id="REF-2", display_name="élan")
    make_batch(known_facility, account=account, supplier_reference_id="OTHER-3")
    log_in(page, "olivia")
    page.get_by_role("link", name="Batches", exact=True).click()
    page.get_by_label("Search").press_sequentially("elan", delay=30)
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#results .summary")).to_have_text("2 batches")


def test_record_a_batch_from_the_last_one_confirming_a_reference_in_other_case(
    page: Page,
    operator: User,
    account: IsometricAccount,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
    shoot: Shoot,
) -> None:
    make_facility("Another kiln", account)
    last = make_batch(
        known_facility,
        [known_feedstock_type],
        account=account,
        supplier_reference_id="kiln-a-0041",
        display_name="Kiln A run 41",
        mass_magnitude=Decimal("7.25"),
        mass_unit="kg",
        created_by=operator,
    )
    log_in(page, "olivia")
    page.get_by_role("link", name="Record a batch").first.click()
    expect(page.get_by_label("Facility")).to_have_value(str(known_facility.pk))
    expect(page.get_by_label("Mass", exact=True)).to_have_value("")

    page.get_by_role("link", name="Copy from my last batch").click()
    expect(page.get_by_text("Filled in from your last batch")).to_be_visible()
    expect(page.get_by_label("Facility")).to_have_value(str(known_facility.pk))
    expect(page.get_by_label(known_feedstock_type.name)).to_be_checked()
    expect(page.get_by_label("Unit")).to_have_value("kg")
    assert Decimal(page.get_by_label("Mass", exact=True).input_value()) == Decimal("7.25")
    expect(page.get_by_label("Display name")).to_have_value("")
    expect(page.get_by_label("Production started")).to_have_value("")
    shoot(page, "batch-form-copied")

    started = timezone.localtime() - timedelta(days=1)
    page.get_by_label("Supplier reference").fill("KILN-A-0041")
    page.get_by_label("Production started").fill(f"{started:%Y-%m-%dT%H:%M}")
    page.get_by_label("Production ended").fill(f"{started + timedelta(hours=6):%Y-%m-%dT%H:%M}")
    page.get_by_role("button", name="Save batch").click()
    warning = page.locator(".unusual")
    expect(warning).to_contain_text("“kiln-a-0041”, which differs from this one only in capital")
    page.get_by_label("These values are right: save the batch as it is").check()
    page.get_by_role("button", name="Save batch").click()

    expect(page.get_by_role("status").first).to_contain_text("Batch KILN-A-0041 saved.")
    saved = ProductionBatch.objects.get(supplier_reference_id="KILN-A-0041")
    assert (saved.facility, saved.mass_magnitude, saved.mass_unit) == (
        known_facility,
        Decimal("7.25"),
        "kg",
    )
    assert saved.display_name == "" and saved.pk != last.pk


def test_choose_a_time_zone_and_see_every_time_in_it(
    page: Page, operator: User, account: IsometricAccount, known_facility: Facility
) -> None:
    batch = make_batch(
        known_facility, account=account, started_at=datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    )
    log_in(page, "olivia")
    page.goto(batch.get_absolute_url())
    expect(page.locator("dd", has_text="5 Mar 2026 12:00 UTC").first).to_be_visible()
    page.get_by_role("link", name="olivia").click()
    page.get_by_label("Time zone").select_option("Asia/Kolkata")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_contain_text("Asia/Kolkata")
    expect(page.get_by_text(re.compile(r"It is now .* IST\."))).to_be_visible()
    page.goto(batch.get_absolute_url())
    expect(page.locator("dd", has_text="5 Mar 2026 17:30 IST").first).to_be_visible()
