"""The second factor at sign-in: superusers and whoever may see or change Isometric credentials
give a code from an authenticator app (set up the first time) or a recovery code; nobody else is
asked."""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import log_in, make_user, totp_code

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse"  # every factory user's


def sign_in(client: Client, username: str, next_page: str = "/admin/") -> str:
    """The password step: where it leads."""
    response = client.post(
        f"/login/?next={next_page}", {"username": username, "password": PASSWORD, "next": next_page}
    )
    assert response.status_code == 302, response.content.decode()[-1500:]
    return str(response["Location"])


def wait_out_the_throttle(user: User) -> None:
    """What a few seconds do after a wrong code: the next try is allowed again."""
    TOTPDevice.objects.filter(user=user).update(throttling_failure_count=0)
    StaticDevice.objects.filter(user=user).update(throttling_failure_count=0)


def set_up(client: Client, username: str) -> list[str]:
    """The first sign-in: the app set up; the recovery codes shown."""
    sign_in(client, username)
    page = client.get("/second-factor/setup/?next=/admin/").content.decode()
    assert re.search(r'<img class="qr-code" src="data:image/svg\+xml', page)
    device = TOTPDevice.objects.get(user__username=username, confirmed=False)
    response = client.post(
        "/second-factor/setup/", {"code": totp_code(device), "next": "/admin/"}
    ).content.decode()
    codes = re.findall(r"<li><code>(\w+)</code></li>", response)
    assert len(codes) == 10
    return codes


@pytest.fixture
def credential_admin() -> User:
    return make_user("cora", credential_admin=True)


def test_the_first_sign_in_sets_up_the_app_then_opens_the_admin(
    client: Client, credential_admin: User
) -> None:
    assert sign_in(client, "cora") == "/admin/"
    assert client.get("/admin/")["Location"] == "/second-factor/?next=%2Fadmin%2F"
    assert client.get("/second-factor/?next=/admin/")["Location"].startswith(
        "/second-factor/setup/"
    )
    page = client.get("/second-factor/setup/?next=/admin/").content.decode()
    device = TOTPDevice.objects.get(user=credential_admin, confirmed=False)
    key = re.search(r'<code class="secret-key">([A-Z2-7 ]+)</code>', page)
    assert key and key.group(1).replace(" ", "")  # typed by hand, if not scanned
    assert client.get("/second-factor/setup/").content.decode().count(key.group(1)) == 1  # same

    refused = client.post("/second-factor/setup/", {"code": "000000", "next": "/admin/"})
    assert "That code is not right" in refused.content.decode()
    assert client.get("/admin/").status_code == 302  # still not through
    too_soon = client.post("/second-factor/setup/", {"code": totp_code(device), "next": "/admin/"})
    assert "wait a few seconds" in too_soon.content.decode()
    wait_out_the_throttle(credential_admin)

    done = client.post("/second-factor/setup/", {"code": totp_code(device), "next": "/admin/"})
    assert "Your recovery codes" in done.content.decode()
    assert client.get("/admin/").status_code == 200


def test_later_sign_ins_ask_for_a_code_and_a_wrong_one_gets_nowhere(
    client: Client, credential_admin: User
) -> None:
    set_up(client, "cora")
    device = TOTPDevice.objects.get(user=credential_admin, confirmed=True)
    client.post("/logout/")

    assert sign_in(client, "cora") == "/admin/"
    assert client.get("/admin/portal/isometricaccount/").status_code == 302
    assert client.get("/batches/").status_code == 302  # every page, not only the admin's
    wrong = client.post("/second-factor/", {"code": "123456", "next": "/admin/"})
    assert "That code is not right" in wrong.content.decode()
    # Someone with the password alone cannot replace the app.
    assert client.get("/second-factor/setup/")["Location"].startswith("/second-factor/")
    wait_out_the_throttle(credential_admin)

    right = client.post(
        "/second-factor/", {"code": totp_code(device, steps_ahead=1), "next": "/admin/"}
    )
    assert right["Location"] == "/admin/"
    assert client.get("/admin/portal/isometricaccount/").status_code == 200


def test_a_recovery_code_signs_in_once(client: Client, credential_admin: User) -> None:
    codes = set_up(client, "cora")
    client.post("/logout/")
    sign_in(client, "cora")

    used = client.post("/second-factor/", {"code": codes[0], "next": "/admin/"}, follow=True)

    assert "You signed in with a recovery code; 9 left." in used.content.decode()
    client.post("/logout/")
    sign_in(client, "cora")
    again = client.post("/second-factor/", {"code": codes[0], "next": "/admin/"})
    assert "That code is not right, or was used already" in again.content.decode()


def test_new_recovery_codes_replace_the_old_ones(client: Client, credential_admin: User) -> None:
    old = set_up(client, "cora")
    assert (
        "You have 10 recovery codes left."
        in client.get("/second-factor/recovery-codes/").content.decode()
    )

    page = client.post("/second-factor/recovery-codes/").content.decode()

    new = re.findall(r"<li><code>(\w+)</code></li>", page)
    assert len(new) == 10 and not set(new) & set(old)
    client.post("/logout/")
    sign_in(client, "cora")
    assert (
        "That code is not right"
        in client.post("/second-factor/", {"code": old[1]}).content.decode()
    )
    wait_out_the_throttle(credential_admin)
    assert client.post("/second-factor/", {"code": new[1]}).status_code == 302


@pytest.mark.parametrize(
    ("fields", "asked"),
    [
        ({"is_superuser": True, "is_staff": True}, True),
        ({"is_staff": True}, False),  # staff without the accounts' permissions
        ({"operator": True}, False),
    ],
)
def test_who_is_asked(client: Client, fields: dict[str, bool], asked: bool) -> None:
    make_user("sam", **fields)
    sign_in(client, "sam", next_page="/")

    response = client.get("/")

    assert (response.status_code == 302) == asked
    if asked:
        assert response["Location"].startswith("/second-factor/")


def test_the_second_step_leads_only_to_this_site(client: Client, credential_admin: User) -> None:
    set_up(client, "cora")
    client.post("/logout/")
    sign_in(client, "cora")
    device = TOTPDevice.objects.get(user=credential_admin, confirmed=True)

    response = client.post(
        "/second-factor/",
        {"code": totp_code(device, steps_ahead=1), "next": "https://evil.example/"},
    )

    assert response["Location"] == "/"


def test_no_admin_page_shows_anyones_authenticator_secret(credential_admin: User) -> None:
    make_user("root", is_superuser=True, is_staff=True)
    admin = Client()
    set_up(admin, "root")
    set_up(Client(), "cora")

    index = admin.get("/admin/").content.decode()

    assert "otp_totp" not in index and "otp_static" not in index
    assert admin.get("/admin/otp_totp/totpdevice/").status_code == 404


def test_the_preferences_page_leads_to_the_recovery_codes_of_those_who_have_them(
    credential_admin: User,
) -> None:
    admin, operator = Client(), Client()
    set_up(admin, "cora")
    log_in(operator, make_user("olivia", operator=True))

    assert "/second-factor/recovery-codes/" in admin.get("/preferences/").content.decode()
    assert "/second-factor/" not in operator.get("/preferences/").content.decode()
