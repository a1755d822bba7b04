"""An admin sets up their second factor, stores an account's credentials and never sees them
again, on any page; then signs in again with a code from the app."""

from collections.abc import Callable

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from isometric.emulator import Emulator
from portal.models import ConnectionStatus, IsometricAccount
from tests.e2e.conftest import app_code, log_in
from tests.factories import make_user

Shoot = Callable[[Page, str], None]


def test_stored_credentials_are_never_shown_again(
    page: Page, emulator: Emulator, transactional_db: None, shoot: Shoot
) -> None:
    make_user("ada", is_superuser=True, is_staff=True)
    secret, token = emulator.client_secret, emulator.access_token
    log_in(page, "ada", first_time=True)
    page.goto("/admin/portal/isometricaccount/add/")
    page.get_by_label("Name").fill("Kilns Ltd")
    page.get_by_label("Environment").select_option("custom")
    page.get_by_label("Custom base URL").fill(emulator.base_url)
    page.get_by_label("Client secret").fill(secret)
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    account = IsometricAccount.objects.get()
    page.goto("/admin/portal/isometricaccount/")
    page.get_by_label("Select this object for an action - Kilns Ltd").check()
    page.get_by_label("Action:").select_option("test_connection")
    page.get_by_role("button", name="Run").click()
    expect(page.locator(".messagelist")).to_contain_text("Connected to")
    account.refresh_from_db()
    assert account.connection_status == ConnectionStatus.OK

    pages = [
        "/admin/portal/isometricaccount/",
        f"/admin/portal/isometricaccount/{account.pk}/change/",
        f"/admin/portal/isometricaccount/{account.pk}/history/",
        "/admin/",
        "/",
        "/batches/",
        "/batches/isometric/",
        "/batches/new/",
    ]
    for url in pages:
        page.goto(url)
        html = page.content()
        assert secret not in html and token not in html, url
        assert token[-4:] not in html or "••••" + token[-4:] in html
    page.goto(f"/admin/portal/isometricaccount/{account.pk}/change/")
    expect(page.get_by_text("••••" + token[-4:])).to_be_visible()
    shoot(page, "admin-account")

    page.get_by_role("button", name="Log out").first.click()
    log_in(page, "ada")
    expect(page.get_by_role("heading", name="Your code, please")).to_be_visible()
    page.get_by_label("Code").fill(app_code(User.objects.get(username="ada")))
    page.get_by_role("button", name="Continue").click()
    page.goto("/admin/portal/isometricaccount/")
    expect(page.get_by_role("link", name="Kilns Ltd")).to_be_visible()
