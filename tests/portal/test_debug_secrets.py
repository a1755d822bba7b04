"""With DEBUG on, Django's error page lists every frame's local variables and the request's POST:
none of them may show an Isometric client secret or access token, or any part of one."""

import base64
import json
import re
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings
from urllib3.connectionpool import HTTPConnectionPool

from isometric.emulator import Emulator
from portal.models import IsometricAccount
from tests.factories import log_in, make_account, make_user

pytestmark = pytest.mark.django_db

SECRET = "Qx7vPz2LmN8rTw4KjH6bYc9dFg3sA5eUh1Zo0WqRtXy"


def _part(claims: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")


# A JWT, so that its expiry is read too: it expires in 2100.
TOKEN = ".".join(
    [
        _part({"alg": "HS256", "typ": "JWT"}),
        _part({"exp": 4102444800, "sub": "org_Zk3Rq8Wm2Tn6Yp1Xv5Lb"}),
        "pL4vQ9xR2mZ7kW1sT8nY3bC6dF0gH5jK-uE_aO",
    ]
)


def assert_no_secret(text: str, *secrets: str) -> None:
    """No secret, nor any 8 characters in a row of one, is in text."""
    for secret in secrets:
        for start in range(len(secret) - 7):
            window = secret[start : start + 8]
            assert window not in text, f"{window!r} of a secret is in the page"


@pytest.fixture(autouse=True)
def debug(settings: Settings) -> None:
    settings.DEBUG = True


@pytest.fixture
def isometric_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any request to Isometric fails unexpectedly, deep in urllib3, its headers in hand."""

    def fail(self: HTTPConnectionPool, timeout: object = None) -> None:
        raise RuntimeError("the connection pool broke")

    monkeypatch.setattr(HTTPConnectionPool, "_get_conn", fail)


def error_page(client: Client, method: str, url: str, data: dict[str, Any] | None = None) -> str:
    client.raise_request_exception = False
    response = getattr(client, method)(url, data)
    assert response.status_code == 500
    page = response.content.decode()
    assert "<title>" in page and "Traceback" in page  # DEBUG's technical page
    return page


def account(emulator: Emulator, *members: Any, access_token: str = TOKEN) -> IsometricAccount:
    return make_account(
        "Kilns Ltd",
        emulator=emulator,
        members=members,
        client_secret=SECRET,
        access_token=access_token,
    )


def test_in_isometric_page(client: Client, emulator: Emulator, isometric_breaks: None) -> None:
    operator = make_user(operator=True)
    account(emulator, operator)
    log_in(client, operator)
    page = error_page(client, "get", "/batches/isometric/")
    assert "RuntimeError" in page and "the connection pool broke" in page
    assert "urllib3" in page and "isometric/client.py" in page  # the frames are all there
    assert_no_secret(page, SECRET, TOKEN)


def test_in_isometric_page_with_a_token_http_cannot_send(
    client: Client, emulator: Emulator
) -> None:
    operator = make_user(operator=True)
    # Pasted with an ellipsis: not latin-1, as HTTP headers must be.
    account(emulator, operator, access_token=f"{TOKEN}…")
    log_in(client, operator)
    page = error_page(client, "get", "/batches/isometric/")
    assert "UnicodeEncodeError" in page
    assert_no_secret(page, SECRET, TOKEN)


def test_admin_test_connection(client: Client, emulator: Emulator, isometric_breaks: None) -> None:
    log_in(client, make_user(is_superuser=True, is_staff=True))
    chosen = account(emulator)
    page = error_page(
        client,
        "post",
        "/admin/portal/isometricaccount/",
        {"action": "test_connection", "_selected_action": [chosen.pk]},
    )
    assert "RuntimeError" in page
    assert_no_secret(page, SECRET, TOKEN)


ADD = "/admin/portal/isometricaccount/add/"
NEW_ACCOUNT = {
    "name": "Char Co",
    "environment": "custom",
    "base_url": "http://127.0.0.1:9/mrv/v0",
    "client_secret": SECRET,
    "access_token": TOKEN,
}


def test_admin_add_form_when_encrypting_fails(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(text: str) -> str:
        raise RuntimeError("encryption broke")

    monkeypatch.setattr("portal.crypto.encrypt", fail)
    log_in(client, make_user(is_superuser=True, is_staff=True))
    page = error_page(client, "post", ADD, NEW_ACCOUNT)
    assert "RuntimeError" in page and "encryption broke" in page
    for field in ("client_secret", "access_token"):  # in request.POST, hidden
        assert re.search(rf"<td>{field}</td>\s*<td class=\"code\"><pre>&#x27;\*{{20}}&#x27;", page)
    assert_no_secret(page, SECRET, TOKEN)


def test_admin_add_form_with_a_bad_encryption_key(client: Client, settings: Settings) -> None:
    settings.ENCRYPTION_KEYS = ["not a Fernet key"]
    log_in(client, make_user(is_superuser=True, is_staff=True))
    page = error_page(client, "post", ADD, NEW_ACCOUNT)
    assert "ImproperlyConfigured" in page and "portal/crypto.py" in page
    assert_no_secret(page, SECRET, TOKEN)
