"""The accounts in the admin: write-only secrets, who may see them, the connection test, and no
secret in any page, log or error report."""

import logging
import re
import sys
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.core.signals import got_request_exception
from django.test import Client
from django.views.debug import ExceptionReporter

from isometric.emulator import Emulator
from portal.accounts import CREDENTIAL_ADMINS
from portal.admin import IsometricAccountForm
from portal.models import ConnectionStatus, IsometricAccount
from tests.factories import log_in, make_account, make_batch, make_user

pytestmark = pytest.mark.django_db

ADD = "/admin/portal/isometricaccount/add/"
CHANGELIST = "/admin/portal/isometricaccount/"
SECRET = "client-secret-never-shown-9wxAh"
TOKEN = "header.payload-never-shown.sig7Qz"


def change_url(account: IsometricAccount) -> str:
    return f"/admin/portal/isometricaccount/{account.pk}/change/"


def account_form(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Char Co",
        "environment": "custom",
        "base_url": "http://127.0.0.1:9/mrv/v0",
        "client_secret": SECRET,
        "access_token": TOKEN,
        "members": [],
        **changes,
    }


def test_adding_an_account_stores_the_secrets_encrypted_and_never_shows_them(
    admin_client: Client,
) -> None:
    response = admin_client.post(ADD, account_form(), follow=True)
    assert response.status_code == 200
    account = IsometricAccount.objects.get(name="Char Co")
    assert account.client_secret_hint == "••••wxAh"
    assert SECRET not in account.encrypted_client_secret

    html = admin_client.get(change_url(account)).content.decode()
    assert "Stored: ••••wxAh. Leave blank to keep it." in html
    assert "Stored: ••••g7Qz." in html
    assert SECRET not in html and TOKEN not in html
    assert not re.search(r'name="client_secret"[^>]*value=', html)


def test_a_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(
    admin_client: Client,
) -> None:
    account = make_account(name="Char Co", client_secret=SECRET, access_token=TOKEN)
    admin_client.post(
        change_url(account), account_form(client_secret="", access_token="", name="Char Co Ltd")
    )
    account.refresh_from_db()
    assert account.name == "Char Co Ltd"
    assert account.client_secret_hint == "••••wxAh"
    assert account.access_token_hint == "••••g7Qz"

    admin_client.post(change_url(account), account_form(client_secret="a-new-secret-AbCd"))
    account.refresh_from_db()
    assert account.client_secret_hint == "••••AbCd"


def test_a_new_account_needs_both_secrets() -> None:
    form = IsometricAccountForm(data=account_form(client_secret="", access_token=""))
    assert not form.is_valid()
    assert set(form.errors) == {"client_secret", "access_token"}


def test_a_custom_environment_needs_a_base_url() -> None:
    form = IsometricAccountForm(data=account_form(base_url=""))
    assert form.errors["base_url"] == ["A custom environment needs its base URL."]


def test_an_admin_sets_the_accounts_rate_limit_for_every_worker(admin_client: Client) -> None:
    account = make_account(name="Char Co", client_secret=SECRET, access_token=TOKEN)
    assert account.rate_limit is None  # none by default: only Isometric's 429s slow it down

    admin_client.post(change_url(account), account_form(request_rate_limit="8"))

    account.refresh_from_db()
    assert account.rate_limit == 8
    refused = IsometricAccountForm(data=account_form(name="Other Co", request_rate_limit="0"))
    assert list(refused.errors) == ["request_rate_limit"]


def test_the_admin_log_names_changed_fields_without_their_values(admin_client: Client) -> None:
    account = make_account(name="Char Co")
    admin_client.post(change_url(account), account_form(access_token="", client_secret=SECRET))
    entry = LogEntry.objects.get(object_id=str(account.pk))
    assert entry.get_change_message() == "Changed client_secret."
    assert SECRET not in entry.change_message


def test_only_superusers_and_credential_admins_may_see_accounts(client: Client) -> None:
    account = make_account()
    staff = make_user("staffer", is_staff=True)
    account.members.add(staff)
    log_in(client, staff)
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(change_url(account)).status_code == 403
    assert "Isometric accounts" not in client.get("/admin/").content.decode()

    staff.groups.add(Group.objects.get(name=CREDENTIAL_ADMINS))
    assert client.get(CHANGELIST)["Location"].startswith("/second-factor/")  # a second step now
    log_in(client, staff)
    assert client.get(CHANGELIST).status_code == 200
    assert client.get(change_url(account)).status_code == 200


def test_a_credential_admin_manages_only_the_accounts_they_are_in(client: Client) -> None:
    mine, theirs = make_account("Mine"), make_account("Theirs")
    admin = make_user("cora", credential_admin=True)
    mine.members.add(admin)
    log_in(client, admin)

    listed = client.get(CHANGELIST).content.decode()
    assert "Mine" in listed and "Theirs" not in listed
    assert client.get(change_url(theirs)).status_code == 302  # "does not exist", to the index
    client.post(f"{CHANGELIST}add/", account_form(name="New Co"))
    assert IsometricAccount.objects.get(name="New Co").members.filter(pk=admin.pk).exists()


def test_a_credential_admin_adds_members_from_their_organisations_or_none(
    client: Client,
) -> None:
    mine, theirs = make_account("Mine"), make_account("Theirs")
    admin = make_user("cora", credential_admin=True)
    mine.members.add(admin, make_user("colleague"))
    theirs.members.add(make_user("outsider"))
    make_user("newcomer")
    log_in(client, admin)

    page = client.get(change_url(mine)).content.decode()
    assert "colleague" in page and "newcomer" in page and "outsider" not in page
    outsider = theirs.members.get()
    refused = client.post(change_url(mine), account_form(name="Mine", members=[outsider.pk]))
    assert "Select a valid choice" in refused.content.decode()
    assert not mine.members.filter(pk=outsider.pk).exists()


def test_operators_cannot_reach_the_accounts(client: Client) -> None:
    account = make_account()
    log_in(client, make_user("ops", operator=True))
    assert client.get(change_url(account)).status_code == 302  # to the admin login


def test_the_test_connection_action_reports_each_account(
    admin_client: Client, emulator: Emulator
) -> None:
    good = make_account(name="Good", emulator=emulator)
    refused = make_account(name="Refused", emulator=emulator, client_secret="wrong-secret-x")
    response = admin_client.post(
        CHANGELIST,
        {"action": "test_connection", "_selected_action": [good.pk, refused.pk]},
        follow=True,
    )
    html = response.content.decode()
    assert f"Good: Connected to {emulator.organisation['name']}." in html
    assert "Refused: Isometric refused the credentials (401)." in html
    good.refresh_from_db()
    assert good.connection_status == ConnectionStatus.OK


def test_no_page_shows_a_secret(admin_client: Client) -> None:
    account = make_account(name="Char Co", client_secret=SECRET, access_token=TOKEN)
    batch = make_batch(account=account)
    urls = [
        "/",
        "/batches/",
        "/batches/new/?reference=REF-1",  # the form as "Record a batch" leads to it
        "/batches/isometric/",
        f"/batches/{batch.pk}/",
        f"/batches/{batch.pk}/edit/",
        f"/batches/statuses/?ids={batch.pk}",
        f"/admin/batches/productionbatch/{batch.pk}/change/",
        "/admin/",
        CHANGELIST,
        ADD,
        change_url(account),
        f"/admin/portal/isometricaccount/{account.pk}/history/",
        f"/admin/portal/isometricaccount/{account.pk}/delete/",
    ]
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert SECRET not in html and TOKEN not in html, url
    rejected = admin_client.post(ADD, account_form(name=""))
    assert SECRET not in rejected.content.decode() and TOKEN not in rejected.content.decode()


def test_an_error_report_leaves_the_posted_secrets_out(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(IsometricAccount, "save", fail)
    reports = []

    def report(sender: Any, request: Any, **kwargs: Any) -> None:
        reports.append(ExceptionReporter(request, *sys.exc_info()).get_traceback_text())

    got_request_exception.connect(report)
    admin_client.raise_request_exception = False
    caplog.set_level(logging.DEBUG)
    try:
        response = admin_client.post(ADD, account_form())
    finally:
        got_request_exception.disconnect(report)
    assert response.status_code == 500
    assert reports and "client_secret" in reports[0]
    for text in [*reports, caplog.text]:
        assert SECRET not in text and TOKEN not in text
