"""An operator records a batch, watches it reach Isometric, and finds it again."""

import re
from collections.abc import Callable
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from batches.models import Facility, FeedstockType, SyncStatus
from isometric.emulator import Emulator
from portal.models import IsometricAccount
from tests.e2e.conftest import log_in
from tests.factories import make_batch

Shoot = Callable[[Page, str], None]


def test_record_a_batch_fix_a_mistake_and_see_it_synced_without_reloading(
    page: Page,
    operator: User,
    account: IsometricAccount,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
    emulator: Emulator,
    worker: None,
    shoot: Shoot,
) -> None:
    emulator.configure(latency_ms=1500)  # long enough to see the batch on its way
    log_in(page, "olivia")
    shoot(page, "dashboard")
    page.get_by_role("link", name="Record a batch").first.click()
    started = timezone.localtime() - timedelta(days=1)
    page.get_by_label("Facility").select_option(label="Kiln A")
    page.get_by_label("Supplier reference").fill("E2E-KILN-0001")
    page.get_by_label("Production started").fill(f"{started:%Y-%m-%dT%H:%M}")
    page.get_by_label("Production ended").fill(f"{started - timedelta(hours=2):%Y-%m-%dT%H:%M}")
    page.get_by_label("Mass").fill("12.5")
    page.get_by_label(known_feedstock_type.name).check()
    page.get_by_role("button", name="Save batch").click()

    ended_field = page.locator("#field-ended_at")
    expect(ended_field.locator(".error")).to_have_text("Production must end after it started.")
    expect(page.get_by_role("alert")).to_contain_text("Please correct the fields marked below.")
    shoot(page, "batch-form-error")
    page.get_by_label("Production ended").fill(f"{started + timedelta(hours=6):%Y-%m-%dT%H:%M}")
    page.get_by_role("button", name="Save batch").click()

    expect(page.get_by_role("status")).to_contain_text("Batch E2E-KILN-0001 saved.")
    badge = page.locator("#batch-status")
    expect(badge).to_have_text(re.compile("Pending|Syncing"))
    page.evaluate("window.notReloaded = true")
    expect(badge).to_have_text("Synced", timeout=15_000)
    assert page.evaluate("window.notReloaded") is True
    # Isometric's own answer, its HTTP status and id sit in the collapsed technical details.
    created = page.get_by_text("Created as ptb_")
    expect(created).to_be_hidden()
    page.get_by_text("Technical details").click()
    expect(created).to_be_visible()
    shoot(page, "batch-detail")
    counts = emulator.stats()["created_by_supplier_reference_id"]
    assert counts == {"E2E-KILN-0001": 1}

    # And finds it again among the batches the worker mirrored from Isometric meanwhile.
    page.get_by_role("link", name="Batches", exact=True).click()
    page.get_by_label("Search").press_sequentially("kiln-00", delay=30)
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("E2E-KILN-0001")
    page.get_by_label("Status").select_option("synced")
    expect(rows).to_have_count(1)
    page.get_by_label("Status").select_option("failed")
    expect(page.locator("#results")).to_contain_text("No batches match.")


def test_the_list_shows_its_batches_reach_isometric_without_reloading(
    page: Page,
    operator: User,
    account: IsometricAccount,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
    emulator: Emulator,
    worker: None,
) -> None:
    emulator.configure(latency_ms=1500)
    # Due in a few seconds: still pending when the list first shows it.
    due = timezone.now() + timedelta(seconds=8)
    batches = [
        make_batch(
            known_facility,
            [known_feedstock_type],
            account=account,
            supplier_reference_id=f"E2E-LIST-{n}",
            next_attempt_at=due,
        )
        for n in range(2)
    ]
    log_in(page, "olivia")
    page.get_by_role("link", name="Batches", exact=True).click()
    badges = [page.locator(f"#batch-{batch.pk}-status") for batch in batches]
    for badge in badges:
        expect(badge).to_have_text("Pending")
    expect(page.locator("#batch-statuses")).to_have_count(1)  # one poller for the page
    page.evaluate("window.notReloaded = true")

    for badge in badges:
        expect(badge).to_have_text("Synced", timeout=20_000)
    expect(page.locator("#batch-statuses")).to_have_count(0)  # and it stops once all settled
    assert page.evaluate("window.notReloaded") is True


def test_find_a_batch_by_part_of_its_reference_and_by_filters(
    page: Page,
    operator: User,
    account: IsometricAccount,
    known_facility: Facility,
    shoot: Shoot,
) -> None:
    for n, status in enumerate([SyncStatus.SYNCED, SyncStatus.FAILED, SyncStatus.SYNCED]):
        make_batch(
            known_facility,
            account=account,
            supplier_reference_id=f"CHAR-{n:03d}-NORTH",
            sync_status=status,
            started_at=timezone.now() - timedelta(days=n + 1),
        )
    make_batch(known_facility, account=account, supplier_reference_id="OTHER-999")
    log_in(page, "olivia")
    page.get_by_role("link", name="Batches", exact=True).click()
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(4)

    page.get_by_label("Search").press_sequentially("001-NOR", delay=30)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("CHAR-001-NORTH")
    assert "q=001-NOR" in page.url

    page.get_by_label("Search").fill("north")
    expect(rows).to_have_count(3)
    page.get_by_label("Status").select_option("failed")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("CHAR-001-NORTH")
    shoot(page, "batch-list-filtered")

    page.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(4)
