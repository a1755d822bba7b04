"""Browser tests: Playwright driving Debian's Chromium (never a downloaded browser) against the
portal on a live server, with a sync worker process running and the emulator behind it.

Every page a test visits is watched: a console error, an uncaught exception or a Content
Security Policy violation fails the test. Screenshots go to artifacts/e2e/, at 1280 and 390 px:
a page wider than the window at either fails the test.
"""

import os
import shutil
import signal
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from batches.models import Facility, FeedstockType
from isometric.emulator import Emulator
from portal.models import IsometricAccount
from tests.factories import make_account, make_user, totp_code
from tests.processes import ROOT, start_manage

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
ARTIFACTS = ROOT / "artifacts" / "e2e"
PASSWORD = "correct horse"  # every factory user's
WIDTHS = (1280, 390)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM:
        return
    if os.environ.get("E2E_REQUIRED"):
        raise pytest.UsageError("Chromium is not installed: apt-get install -y chromium")
    skip = pytest.mark.skip(reason="Chromium is not installed: apt-get install -y chromium")
    for item in items:
        if "e2e" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the browser tests, closed after them."""
    assert CHROMIUM is not None
    # The sandbox needs user namespaces, which a container running as root seldom has.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        # Playwright's sync API keeps an event loop in the test's thread; the ORM calls the
        # tests make around it are synchronous all the same. (Only here: `check --deploy`
        # rightly refuses the setting.)
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        browser.close()


_REPORT_CSP = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A fresh browser tab on the live server, 1280 px wide, failing the test on any console
    error, page error or CSP violation."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.add_init_script(_REPORT_CSP)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda message: _note(problems, tab, message.type, message.text))
    tab.on("pageerror", lambda error: problems.append(f"{tab.url}: uncaught {error}"))
    yield tab
    context.close()
    assert problems == []


def _note(problems: list[str], tab: Page, kind: str, text: str) -> None:
    if kind == "error":
        problems.append(f"{tab.url}: {text}")


_WIDER_THAN_THE_WINDOW = """
[...document.querySelectorAll("body *")]
  .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 0.5)
  .filter((element) => element.getClientRects().length)
  .slice(-5)
  .map((element) => `${element.tagName.toLowerCase()}.${[...element.classList].join(".")}`)
"""


@pytest.fixture
def shoot() -> Callable[[Page, str], None]:
    """Screenshot the page at each width into artifacts/e2e/NAME-WIDTH.png, and fail if it
    scrolls sideways at any of them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(tab: Page, name: str) -> None:
        # Not while htmx is still fetching (a search waits 300 ms after the last key).
        tab.wait_for_load_state("networkidle")
        size = tab.viewport_size
        assert size is not None
        too_wide = []
        for width in WIDTHS:
            tab.set_viewport_size({"width": width, "height": size["height"]})
            if tab.evaluate("document.documentElement.scrollWidth > window.innerWidth"):
                too_wide.append(f"{width} px: {tab.evaluate(_WIDER_THAN_THE_WINDOW)}")
            # caret="initial": hiding the caret leaves style="" on inputs, which htmx then
            # copies into its history snapshot, where the CSP rightly refuses it. Transitions
            # are finished, not caught halfway (the table fades while it loads).
            tab.screenshot(
                path=str(ARTIFACTS / f"{name}-{width}.png"),
                full_page=True,
                caret="initial",
                animations="disabled",
            )
        tab.set_viewport_size(size)
        assert too_wide == [], f"{name} ({tab.url}) scrolls sideways at {too_wide}"

    return take


@pytest.fixture
def operator(transactional_db: None) -> User:
    return make_user("olivia", operator=True)


@pytest.fixture
def account(emulator: Emulator, operator: User) -> IsometricAccount:
    return make_account("Kilns Ltd", emulator=emulator, members=(operator,))


@pytest.fixture
def known_facility(emulator: Emulator, account: IsometricAccount) -> Facility:
    [facility, *_] = emulator.facilities()
    return Facility.objects.create(account=account, isometric_id=facility["id"], name="Kiln A")


@pytest.fixture
def known_feedstock_type(emulator: Emulator, account: IsometricAccount) -> FeedstockType:
    # Named as in Isometric: the worker's pulls rename it otherwise, under the test's feet.
    [feedstock_type, *_] = emulator.feedstock_types()
    return FeedstockType.objects.create(
        account=account, isometric_id=feedstock_type["id"], name=feedstock_type["name"]
    )


@pytest.fixture
def worker(account: IsometricAccount, live_server: LiveServer) -> Iterator[None]:
    """`manage.py sync_worker` on the test database, as it runs beside the portal."""
    process = start_manage("sync_worker", SYNC_POLL_INTERVAL=0.2)
    yield
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output


def log_in(tab: Page, username: str, first_time: bool = False) -> None:
    """The password step; with `first_time`, the second factor's setup after it, as a
    superuser or credential admin goes through it: the app's code, the recovery codes."""
    tab.goto("/login/")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(lambda url: "/login/" not in url)  # home, or the second factor's step
    if first_time:
        expect(tab.get_by_role("heading", name="Set up your second factor")).to_be_visible()
        expect(tab.get_by_role("img", name="QR code")).to_be_visible()
        user = User.objects.get(username=username)
        tab.get_by_label("Code").fill(app_code(user, confirmed=False))
        tab.get_by_role("button", name="Confirm").click()
        expect(tab.locator(".recovery-codes li")).to_have_count(10)
        tab.get_by_role("link", name="I have kept them: continue").click()


def app_code(user: User, confirmed: bool = True) -> str:
    """What the user's authenticator app shows now (a step on, so that it is never the code
    just used)."""
    device = TOTPDevice.objects.get(user=user, confirmed=confirmed)
    return totp_code(device, steps_ahead=1 if confirmed else 0)
