"""Isometric accounts: encrypted credentials, the connection test, alerts and the commands."""

import io
import logging
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from isometric.emulator import Emulator
from portal import crypto
from portal.accounts import check_connection
from portal.models import ConnectionStatus, IsometricAccount, token_expiry
from tests.factories import jwt_expiring, log_in, make_account, make_user

pytestmark = pytest.mark.django_db


def test_credentials_are_stored_encrypted_and_read_back() -> None:
    account = make_account(client_secret="s3cret-client-value", access_token="tok-en-value-1234")
    stored = IsometricAccount.objects.values().get(pk=account.pk)
    assert "s3cret-client-value" not in str(stored)
    assert "tok-en-value-1234" not in str(stored)
    assert crypto.decrypt(stored["encrypted_client_secret"]) == "s3cret-client-value"
    assert crypto.decrypt(stored["encrypted_access_token"]) == "tok-en-value-1234"


def test_an_old_key_still_reads_and_reencrypt_moves_secrets_to_the_new_key(
    settings: Any,
) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old_key]
    account = make_account(client_secret="client-secret-kept", access_token="token-kept-0001")

    settings.ENCRYPTION_KEYS = [new_key, old_key]
    account.refresh_from_db()
    assert account.client_secret_hint == "••••kept"
    call_command("reencrypt_secrets", stdout=io.StringIO())

    settings.ENCRYPTION_KEYS = [new_key]
    account.refresh_from_db()
    assert crypto.decrypt(account.encrypted_client_secret) == "client-secret-kept"
    assert crypto.decrypt(account.encrypted_access_token) == "token-kept-0001"


def test_reencrypt_refuses_when_no_key_opens_a_secret(settings: Any) -> None:
    make_account()
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="Put the old key back"):
        call_command("reencrypt_secrets")


def test_development_uses_a_derived_key_and_production_refuses_to_run_without_one(
    settings: Any,
) -> None:
    settings.ENCRYPTION_KEYS = []
    settings.DEBUG = True
    assert crypto.decrypt(crypto.encrypt("local")) == "local"
    settings.DEBUG = False
    with pytest.raises(Exception, match="ENCRYPTION_KEYS must be set"):
        crypto.encrypt("anything")


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (jwt_expiring(datetime(2027, 5, 1, tzinfo=UTC)), datetime(2027, 5, 1, tzinfo=UTC)),
        ("not-a-jwt", None),
        ("a.b.c", None),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", None),  # no exp claim
    ],
)
def test_token_expiry_comes_from_the_exp_claim(token: str, expected: datetime | None) -> None:
    assert token_expiry(token) == expected


def test_connection_ok_fills_the_organisation(emulator: Emulator) -> None:
    account = check_connection(make_account(emulator=emulator))
    account.refresh_from_db()
    assert account.connection_status == ConnectionStatus.OK
    assert account.organisation_id == emulator.organisation["id"]
    assert account.organisation_name == emulator.organisation["name"]
    assert account.checked_at is not None


@pytest.mark.parametrize(
    ("credentials", "status"),
    [
        ({"client_secret": "wrong-client-secret"}, 401),
        # Another organisation's token: well formed, but not for this organisation.
        ({"access_token": jwt_expiring(datetime(2027, 1, 1, tzinfo=UTC))}, 403),
    ],
)
def test_connection_with_refused_credentials(
    emulator: Emulator, credentials: dict[str, Any], status: int
) -> None:
    account = check_connection(make_account(emulator=emulator, **credentials))
    assert account.connection_status == ConnectionStatus.REJECTED
    assert f"refused the credentials ({status})" in account.connection_message


def test_connection_to_nothing_is_unreachable() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    account = check_connection(make_account(base_url=f"http://127.0.0.1:{port}/mrv/v0"))
    assert account.connection_status == ConnectionStatus.UNREACHABLE
    assert account.connection_message.startswith("Could not reach Isometric")


def test_connection_to_a_slow_server_times_out(emulator: Emulator, settings: Any) -> None:
    settings.ISOMETRIC_TIMEOUT = (1.0, 0.1)
    emulator.configure(latency_ms=400)
    account = check_connection(make_account(emulator=emulator))
    assert account.connection_status == ConnectionStatus.UNREACHABLE
    assert account.connection_message == (
        "Isometric did not answer in time. Try again in a few minutes."
    )


def test_admins_see_a_banner_for_a_token_near_expiry(client: Client) -> None:
    make_account(name="Char Co", access_token=jwt_expiring(timezone.now() + timedelta(days=10)))
    make_account(name="Far Co", access_token=jwt_expiring(timezone.now() + timedelta(days=200)))
    operator = make_user("ops", operator=True)
    admin = make_user("boss", is_superuser=True, is_staff=True)

    log_in(client, admin)
    for url in ["/", "/batches/", "/admin/"]:
        html = client.get(url).content.decode()
        assert "Isometric account “Char Co”: its access token expires on" in html, url
        assert "Far Co”" not in html
    log_in(client, operator)
    assert "Char Co" not in client.get("/").content.decode()


def test_admins_see_a_banner_for_refused_credentials(client: Client) -> None:
    account = make_account(name="Char Co")
    IsometricAccount.objects.filter(pk=account.pk).update(
        connection_status=ConnectionStatus.REJECTED
    )
    log_in(client, make_user("boss", is_superuser=True, is_staff=True))
    html = client.get("/").content.decode()
    assert "Isometric account “Char Co”: Isometric refused its credentials." in html


def test_isometric_account_command_reads_secrets_from_the_environment(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    operator = make_user("ops", operator=True)
    monkeypatch.setenv("ISOMETRIC_CLIENT_SECRET", emulator.client_secret)
    monkeypatch.setenv("ISOMETRIC_ACCESS_TOKEN", emulator.access_token)
    call_command(
        "isometric_account", "set", "Char Co", "--base-url", emulator.base_url, "--member", "ops"
    )

    account = IsometricAccount.objects.get(name="Char Co")
    assert account.connection_status == ConnectionStatus.OK
    assert list(account.members.all()) == [operator]
    assert account.token_expires_at is not None
    output = capsys.readouterr()
    assert emulator.access_token not in output.out + output.err
    assert emulator.client_secret not in output.out + output.err


def test_isometric_account_command_needs_the_secrets_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ISOMETRIC_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("ISOMETRIC_ACCESS_TOKEN", raising=False)
    with pytest.raises(
        CommandError, match="Set ISOMETRIC_CLIENT_SECRET and ISOMETRIC_ACCESS_TOKEN"
    ):
        call_command("isometric_account", "set", "Char Co", "--environment", "sandbox")
    assert not IsometricAccount.objects.exists()


def test_isometric_account_command_fails_when_isometric_refuses(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISOMETRIC_CLIENT_SECRET", "a-wrong-client-secret")
    monkeypatch.setenv("ISOMETRIC_ACCESS_TOKEN", emulator.access_token)
    with pytest.raises(CommandError, match="refused the credentials"):
        call_command("isometric_account", "set", "Char Co", "--base-url", emulator.base_url)
    assert IsometricAccount.objects.get().connection_status == ConnectionStatus.REJECTED


def test_connection_test_logs_no_secret(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = make_account(emulator=emulator)
    check_connection(account)
    account.set_credentials(client_secret="wrong-secret-for-the-log")
    check_connection(account)
    assert caplog.records
    for secret in [emulator.client_secret, emulator.access_token, "wrong-secret-for-the-log"]:
        assert secret not in caplog.text
    assert emulator.client_secret not in repr(account)
