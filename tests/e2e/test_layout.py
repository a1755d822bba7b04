"""Every page fits the window, at 1280 and at 390 px, with names of 100 characters and no
space in them; on a phone the menu and the list's filters fold away; a failed form hands the
focus to its summary of errors."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from batches.models import (
    BatchImport,
    Facility,
    FeedstockType,
    ImportStatus,
    ProductionBatch,
    RejectedRow,
    SyncAttempt,
    SyncStatus,
)
from isometric.client import Client
from isometric.emulator import Emulator
from isometric.models import Mass, NewProductionBatch
from tests.e2e.conftest import PASSWORD, app_code, log_in
from tests.factories import make_account, make_batch, make_user

Shoot = Callable[[Page, str], None]


def unbroken(prefix: str, length: int = 100) -> str:
    """A name of `length` characters with nowhere to break it (W is the widest letter)."""
    return prefix + "W" * (length - len(prefix))


@dataclass
class LongNames:
    user: User
    synced: ProductionBatch
    rejected: ProductionBatch
    batch_import: BatchImport


@pytest.fixture
def long_names(emulator: Emulator, isometric_client: Client, transactional_db: None) -> LongNames:
    """An admin who is also an operator, in an account whose names, facility, feedstock type,
    batches, attempts and import all run to 100 characters without a space."""
    user = make_user(unbroken("Olivia"), operator=True, is_staff=True, is_superuser=True)
    account = make_account(unbroken("Account"), emulator=emulator, members=(user,))
    [facility_id, *_] = emulator.facility_ids
    [feedstock_type_id, *_] = emulator.feedstock_type_ids
    facility = Facility.objects.create(
        account=account, isometric_id=facility_id, name=unbroken("Facility")
    )
    feedstock_type = FeedstockType.objects.create(
        account=account, isometric_id=feedstock_type_id, name=unbroken("Feedstock")
    )
    started = timezone.now() - timedelta(days=3)
    synced = make_batch(
        facility,
        [feedstock_type],
        supplier_reference_id=unbroken("REF-SYNCED-"),
        display_name=unbroken("Synced"),
        sync_status=SyncStatus.SYNCED,
        remote_id=unbroken("ptb_", 37),
        mass_magnitude=Decimal("123456.789"),
        mass_unit="kg",
        mass_standard_deviation=Decimal("1234.5"),
    )
    reason = unbroken("Isometric-says-")
    rejected = make_batch(
        facility,
        [feedstock_type],
        supplier_reference_id=unbroken("REF-REFUSED-"),
        sync_status=SyncStatus.REJECTED,
        rejection_errors=[["display_name", reason], [None, reason]],
        last_error=reason,
    )
    SyncAttempt.objects.create(
        batch=rejected,
        started_at=timezone.now(),
        duration_ms=123,
        outcome="rejected",
        http_status=422,
        message=unbroken("Refused-because-", 500),
    )
    for day in range(3):
        make_batch(facility, [feedstock_type], started_at=started - timedelta(days=day))
    batch_import = BatchImport.objects.create(
        account=account,
        created_by=user,
        file_name=unbroken("season-") + ".csv",
        status=ImportStatus.CHECKED,
        rows_total=2,
        rows_done=2,
        new=1,
        invalid=1,
    )
    RejectedRow.objects.create(
        batch_import=batch_import,
        number=3,
        conflicting=False,
        values={"facility": unbroken("No-such-facility-")},
        errors={"Facility": [unbroken("No-facility-named-")]},
    )
    isometric_client.create_production_batch(
        NewProductionBatch(
            facility_id=facility_id,
            feedstock_type_ids=[feedstock_type_id],
            supplier_reference_id=unbroken("REF-REMOTE-"),
            started_at=started,
            ended_at=started + timedelta(hours=6),
            mass=Mass(magnitude=12.5, unit="tonne"),
            display_name=unbroken("Remote"),
        )
    )
    return LongNames(user, synced, rejected, batch_import)


def test_no_page_is_wider_than_the_window_whatever_the_names(
    page: Page, long_names: LongNames, shoot: Shoot
) -> None:
    page.goto("/login/")
    shoot(page, "layout-login")
    page.get_by_label("Username").fill(long_names.user.username)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    shoot(page, "layout-login-failed")
    # The second factor's pages too, as an admin first goes through them.
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Set up your second factor")).to_be_visible()
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#error-summary")).to_be_focused()
    shoot(page, "layout-second-factor-setup")
    page.wait_for_timeout(2000)  # a wrong code makes the next try wait a second
    page.get_by_label("Code").fill(app_code(long_names.user, confirmed=False))
    page.get_by_role("button", name="Confirm").click()
    shoot(page, "layout-recovery-codes")
    page.get_by_role("link", name="I have kept them: continue").click()

    synced, rejected = long_names.synced, long_names.rejected
    pages = {
        "home": "/",
        "second-factor-codes": "/second-factor/recovery-codes/",
        "preferences": "/preferences/",
        "notifications": "/notifications/",
        "batch-list": "/batches/",
        "batch-list-searched": "/batches/?q=WWWW&sync_status=rejected",
        "batch-synced": synced.get_absolute_url(),
        "batch-refused": rejected.get_absolute_url(),
        "batch-new": "/batches/new/",
        "batch-edit-refused": f"/batches/{rejected.pk}/edit/",
        "batch-void": f"/batches/{synced.pk}/void/",
        "imports": "/batches/import/",
        "import": long_names.batch_import.get_absolute_url(),
        "in-isometric": "/batches/isometric/",
        "admin": "/admin/",
        "admin-batches": "/admin/batches/productionbatch/",
        "admin-batch": f"/admin/batches/productionbatch/{synced.pk}/change/",
        "admin-facilities": "/admin/batches/facility/",
        "admin-accounts": "/admin/portal/isometricaccount/",
        "admin-account": f"/admin/portal/isometricaccount/{synced.account_id}/change/",
    }
    for name, url in pages.items():
        page.goto(url)
        shoot(page, f"layout-{name}")

    # The page answering 404 is an error in the console: not one to fail on in another tab.
    not_found = page.context.new_page()
    errors: list[str] = []
    not_found.on("console", lambda message: errors.append(f"{message.type} {message.text}"))
    not_found.goto("/batches/999999999/")
    expect(not_found.get_by_role("link", name="Back to the start")).to_be_visible()
    shoot(not_found, "layout-not-found")
    assert errors == [
        "error Failed to load resource: the server responded with a status of 404 (Not Found)"
    ]

    # The correction's preview, reached as an operator does.
    page.goto(f"/batches/{synced.pk}/edit/")
    page.get_by_label("Mass", exact=True).fill("123457")
    page.get_by_role("button", name="Save batch").click()
    expect(page.locator("table.differences")).to_be_visible()
    shoot(page, "layout-batch-correction")


def test_on_a_phone_the_menu_and_the_filters_fold_away(
    page: Page, long_names: LongNames, shoot: Shoot
) -> None:
    log_in(page, long_names.user.username, first_time=True)
    page.goto("/batches/")
    menu = page.get_by_text("Menu", exact=True)
    batches_link = page.get_by_role("link", name="Batches", exact=True)
    search = page.get_by_label("Search")
    expect(menu).to_be_hidden()
    expect(batches_link).to_be_visible()
    expect(search).to_be_visible()

    page.set_viewport_size({"width": 390, "height": 844})
    expect(batches_link).to_be_hidden()
    expect(search).to_be_hidden()
    menu.click()
    expect(batches_link).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    shoot(page, "layout-phone-menu")
    menu.click()
    expect(batches_link).to_be_hidden()

    page.get_by_text("Search and filters").click()
    expect(search).to_be_visible()
    page.get_by_label("Status").select_option("rejected")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    # Back to the page with filters on: they show, open.
    page.reload()
    expect(page.get_by_label("Status")).to_have_value("rejected")
    expect(search).to_be_visible()
    shoot(page, "layout-phone-filters")


def test_a_failed_submit_moves_the_focus_to_a_summary_that_links_to_each_field(
    page: Page, long_names: LongNames, shoot: Shoot
) -> None:
    log_in(page, long_names.user.username, first_time=True)
    page.goto("/batches/new/")
    page.get_by_role("button", name="Save batch").click()

    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Please correct the fields marked below.")
    links = summary.get_by_role("link")
    expect(links).to_have_text(
        [
            "Facility: This field is required.",
            "Feedstock types: Choose at least one feedstock type.",
            "Production started: This field is required.",
            "Production ended: This field is required.",
            "Mass: This field is required.",
        ]
    )
    shoot(page, "layout-form-errors")
    links.filter(has_text="Mass").click()
    expect(page.get_by_label("Mass", exact=True)).to_be_focused()
    links.filter(has_text="Feedstock types").click()
    expect(page.get_by_label(unbroken("Feedstock"))).to_be_focused()

    page.goto(f"/batches/{long_names.synced.pk}/void/")
    page.get_by_role("button", name="Void the batch").click()
    expect(summary).to_be_focused()
    summary.get_by_role("link", name="Why is this batch void?: This field is required.").click()
    expect(page.get_by_label("Why is this batch void?")).to_be_focused()


def test_the_login_summary_takes_the_focus_from_the_user_name(
    page: Page, long_names: LongNames
) -> None:
    page.goto("/login/")
    expect(page.get_by_label("Username")).to_be_focused()
    page.get_by_label("Username").fill(long_names.user.username)
    page.get_by_label("Password").fill(PASSWORD + "?")
    page.get_by_role("button", name="Log in").click()

    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#error-summary")).to_contain_text("Please enter a correct username")
