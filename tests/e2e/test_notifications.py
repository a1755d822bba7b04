"""An operator is emailed that Isometric refused a batch, follows the link to it, then turns
the emails off."""

import re
import signal
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from portal.models import IsometricAccount
from tests.e2e.conftest import log_in
from tests.factories import make_batch, make_facility
from tests.processes import start_manage

Shoot = Callable[[Page, str], None]


def wait_for_email(folder: Path, timeout: float = 30) -> EmailMessage:
    """The first email the file backend wrote into `folder`."""
    deadline = time.monotonic() + timeout
    while not (files := sorted(folder.glob("*.log"))):
        assert time.monotonic() < deadline, "no email was sent"
        time.sleep(0.2)
    time.sleep(0.2)  # written whole
    first = files[0].read_bytes().split(b"\n" + b"-" * 79)[0]
    message = BytesParser(policy=policy.default).parsebytes(first)
    assert isinstance(message, EmailMessage)
    return message


def test_an_emailed_refusal_leads_to_the_batch_and_the_emails_can_be_turned_off(
    page: Page,
    operator: User,
    account: IsometricAccount,
    live_server: LiveServer,
    tmp_path: Path,
    shoot: Shoot,
) -> None:
    operator.email = "olivia@example.com"
    operator.save()
    # A facility Isometric does not know: it refuses the batch.
    make_batch(make_facility("Kiln Z", account=account), supplier_reference_id="E2E-REFUSED-1")
    worker = start_manage(
        "sync_worker",
        SYNC_POLL_INTERVAL=0.2,
        NOTIFICATIONS_INTERVAL=0.2,
        EMAIL_URL=f"filemail:///{tmp_path}",  # an absolute path: four slashes
        PORTAL_URL=live_server.url,
    )
    try:
        message = wait_for_email(tmp_path)
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output

    assert message["To"] == "olivia@example.com"
    body = message.get_content()
    link = re.search(r"E2E-REFUSED-1: (\S+)", body)
    assert link, body
    log_in(page, "olivia")
    page.goto(link[1])
    expect(page.get_by_role("alert")).to_contain_text("Isometric refused this batch.")

    page.get_by_title("Your preferences").click()
    page.get_by_role("link", name="Email notifications").click()
    checkbox = page.get_by_label("Email me when something needs my attention")
    expect(checkbox).to_be_checked()
    expect(page.get_by_text("olivia@example.com")).to_be_visible()
    shoot(page, "notifications")
    checkbox.uncheck()
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_have_text("Saved: the portal no longer emails you.")
    expect(checkbox).not_to_be_checked()
