"""An operator pages through the batches Isometric holds, live, in each page size."""

import math
import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from isometric.emulator import Emulator
from portal.models import IsometricAccount
from tests.e2e.conftest import log_in

Shoot = Callable[[Page, str], None]
TOTAL = 120


@pytest.fixture
def remote_batches(emulator: Emulator, account: IsometricAccount) -> list[str]:
    """The supplier references of 120 batches in the emulator, newest first (the API lists
    them oldest first)."""
    emulator.add_production_batches(TOTAL)
    return [
        batch["supplier_reference_id"] or "no supplier reference"
        for batch in reversed(emulator.production_batches())
    ]


def shown(page: Page) -> list[str]:
    return page.locator("#remote-results tbody tr td:first-child .sub").all_inner_texts()


def test_page_forward_and_back_in_each_size_with_back_button_and_reload(
    page: Page, operator: User, remote_batches: list[str], shoot: Shoot
) -> None:
    log_in(page, "olivia")
    page.get_by_role("link", name="In Isometric", exact=True).click()
    expect(page.locator(".summary")).to_have_text(f"{TOTAL} batches in Isometric.")
    shoot(page, "in-isometric")

    for size in (10, 25, 50):
        page.get_by_label("Per page").select_option(str(size))
        pages = [remote_batches[start : start + size] for start in range(0, TOTAL, size)]
        expect(page.locator("#remote-results tbody tr")).to_have_count(size)
        assert shown(page) == pages[0]
        for number in range(1, math.ceil(TOTAL / size)):
            page.get_by_role("link", name="Next").click()
            expect(page.locator("#remote-results tbody tr").first).to_contain_text(pages[number][0])
            assert shown(page) == pages[number]
            assert f"size={size}" in page.url and "after=" in page.url
        expect(page.get_by_role("link", name="Next")).to_have_count(0)
        deepest = page.url
        for number in reversed(range(len(pages) - 1)):
            page.get_by_role("link", name="Previous").click()
            expect(page.locator("#remote-results tbody tr").first).to_contain_text(pages[number][0])
            assert shown(page) == pages[number]

        page.go_back()
        expect(page.locator("#remote-results tbody tr").first).to_contain_text(pages[1][0])
        assert shown(page) == pages[1]
        page.go_forward()
        expect(page.locator("#remote-results tbody tr").first).to_contain_text(pages[0][0])
        assert shown(page) == pages[0]

        page.goto(deepest)
        page.reload()
        assert shown(page) == pages[-1]
        expect(page.get_by_label("Per page")).to_have_value(str(size))
    shoot(page, "in-isometric-last-page")

    page.get_by_label("Order").select_option(label="Oldest first")
    expect(page.locator("#remote-results tbody tr").first).to_contain_text(remote_batches[-1])
    assert shown(page) == remote_batches[::-1][:50]
    page.get_by_role("link", name="Next").click()
    expect(page.locator("#remote-results tbody tr").first).to_contain_text(remote_batches[-51])


def test_a_failing_isometric_is_explained_and_try_again_recovers(
    page: Page, operator: User, remote_batches: list[str], emulator: Emulator, shoot: Shoot
) -> None:
    log_in(page, "olivia")
    page.goto("/batches/isometric/?size=10")
    expect(page.locator("#remote-results tbody tr")).to_have_count(10)

    emulator.configure(error_503_rate=1.0)
    page.get_by_role("link", name="Next").click()
    alert = page.locator("#remote-results").get_by_role("alert")
    expect(alert).to_contain_text("Isometric is having trouble right now")
    shoot(page, "in-isometric-failing")

    emulator.configure(error_503_rate=0.0)
    page.get_by_role("link", name="Try again").click()
    expect(page.locator("#remote-results tbody tr")).to_have_count(10)
    assert shown(page) == remote_batches[10:20]


def test_a_tampered_cursor_leads_back_to_the_first_page(
    page: Page, operator: User, remote_batches: list[str]
) -> None:
    log_in(page, "olivia")
    page.goto("/batches/isometric/?size=25&after=tampered")

    expect(page.get_by_role("alert")).to_contain_text("This page link is no longer valid")
    page.get_by_role("link", name="Go to the first page").click()
    expect(page.locator("#remote-results tbody tr")).to_have_count(25)
    assert re.search(r"size=25$", page.url)
    assert shown(page) == remote_batches[:25]
