"""X-Forwarded-Proto is believed from the proxies in TRUSTED_PROXIES only: by the portal, and by
gunicorn as the Dockerfile runs it, which reads the same setting."""

from typing import Any

import pytest
from django.core import checks
from django.test import Client, override_settings

from tests.processes import free_port, get_when_up, start_gunicorn

pytestmark = pytest.mark.django_db

HTTPS = {
    "SECURE_SSL_REDIRECT": True,
    "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
}


def first_page(client_address: str, **headers: str) -> Any:
    return Client(REMOTE_ADDR=client_address, headers=headers).get("/")


@override_settings(**HTTPS, TRUSTED_PROXIES=["10.0.0.5", "192.168.0.0/16"])
@pytest.mark.parametrize("proxy", ["10.0.0.5", "192.168.4.20"])
def test_a_trusted_proxy_says_the_browser_came_over_https(proxy: str) -> None:
    response = first_page(proxy, x_forwarded_proto="https")

    assert response.status_code == 302 and response["Location"].startswith("/login/")


@override_settings(**HTTPS, TRUSTED_PROXIES=["10.0.0.5"])
@pytest.mark.parametrize("client_address", ["10.0.0.6", "203.0.113.9", "", "not an address"])
def test_anyone_else_saying_so_is_sent_to_https(client_address: str) -> None:
    response = first_page(client_address, x_forwarded_proto="https")

    assert response.status_code == 301 and response["Location"].startswith("https://")


@override_settings(**HTTPS, TRUSTED_PROXIES=[])
def test_no_proxy_is_trusted_unless_listed() -> None:
    assert first_page("127.0.0.1", x_forwarded_proto="https").status_code == 301


@pytest.mark.parametrize("entry", ["10.0.0.300", "proxy.example.com", "10.0.0.5/24"])
def test_a_proxy_setting_that_is_no_address_stops_the_portal(entry: str) -> None:
    with override_settings(TRUSTED_PROXIES=["10.0.0.5", entry]):
        errors = checks.run_checks(tags=[checks.Tags.security])

    assert [error.id for error in errors if error.id == "portal.E003"] == ["portal.E003"]


@pytest.mark.parametrize(("trusted", "expected"), [("", 301), ("127.0.0.1", 302)])
def test_gunicorn_as_deployed_follows_the_same_setting(trusted: str, expected: int) -> None:
    port = free_port()
    server = start_gunicorn(port, DJANGO_SETTINGS_MODULE="portal.settings", TRUSTED_PROXIES=trusted)
    try:
        response = get_when_up(
            f"http://127.0.0.1:{port}/", Host="localhost", **{"X-Forwarded-Proto": "https"}
        )
    finally:
        server.terminate()
        server.communicate(timeout=30)

    assert response.status_code == expected
