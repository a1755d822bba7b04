"""An account's history: who changed which setting and who replaced which secret, on the
account's admin History page, with nothing of a secret in any entry, page or log line."""

import logging

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.core import serializers
from django.test import Client

from portal.models import IsometricAccount
from tests.factories import log_in, make_account, make_user

pytestmark = pytest.mark.django_db

ADD = "/admin/portal/isometricaccount/add/"
SECRET = "client-secret-never-logged-9wxAh"
TOKEN = "header.payload-never-logged.sig7Qz"
NEW_SECRET = "another-secret-never-logged-Zq3v"


@pytest.fixture
def credential_admin(client: Client) -> User:
    user = make_user("carl", credential_admin=True)
    log_in(client, user)
    return user


def form(**changes: object) -> dict[str, object]:
    return {
        "name": "Char Co",
        "environment": "custom",
        "base_url": "http://127.0.0.1:9/mrv/v0",
        "client_secret": SECRET,
        "access_token": TOKEN,
        "members": [],
        **changes,
    }


def change_url(account: IsometricAccount) -> str:
    return f"/admin/portal/isometricaccount/{account.pk}/change/"


def history_of(client: Client, account: IsometricAccount) -> str:
    response = client.get(f"/admin/portal/isometricaccount/{account.pk}/history/")
    assert response.status_code == 200
    return response.content.decode()


def test_replacing_a_secret_is_logged_by_when_never_by_value(
    client: Client, credential_admin: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.post(ADD, form())
    account = IsometricAccount.objects.get(name="Char Co")
    ciphertexts = [account.encrypted_client_secret, account.encrypted_access_token]

    mine = [credential_admin.pk]
    client.post(change_url(account), form(client_secret=NEW_SECRET, access_token="", members=mine))

    account.refresh_from_db()
    ciphertexts.append(account.encrypted_client_secret)
    [replaced] = LogEntry.objects.get_for_object(account).filter(
        action=LogEntry.Action.UPDATE, changes__has_key="client_secret_changed_at"
    )
    assert replaced.actor == credential_admin
    assert set(replaced.changes) == {"client_secret_changed_at"}
    page = history_of(client, account)
    assert "Client secret changed at" in page and "carl" in page
    everything = serializers.serialize("json", LogEntry.objects.all())
    for text in [SECRET, TOKEN, NEW_SECRET, *ciphertexts]:
        for where in (everything, page, caplog.text):
            assert text not in where
            assert text[-12:] not in where


def test_settings_and_members_are_logged_with_their_values(
    client: Client, credential_admin: User
) -> None:
    account = make_account("Char Co", members=(credential_admin,))
    oona = make_user("oona")

    client.post(
        change_url(account),
        form(
            client_secret="",
            access_token="",
            environment="sandbox",
            base_url="",
            members=[credential_admin.pk, oona.pk],
        ),
    )

    page = history_of(client, account)
    assert "Environment</span>: Custom base URL → Sandbox" in page
    assert "Custom base URL</span>: http://127.0.0.1:9/mrv/v0 → —" in page
    assert "Members</span>: added oona" in page


def test_another_organisation_s_history_is_not_to_be_seen(
    client: Client, credential_admin: User
) -> None:
    theirs = make_account("Theirs")
    theirs.members.add(make_user("outsider"))

    response = client.get(f"/admin/portal/isometricaccount/{theirs.pk}/history/")

    assert response.status_code == 302  # the admin's "does not exist"
    # Nor in a list of every log entry: the admin has none.
    superuser = make_user("root", is_staff=True, is_superuser=True)
    log_in(client, superuser)
    assert client.get("/admin/auditlog/logentry/").status_code == 404
