"""Login throttling (django-axes): a user name is locked, from one address, after
AXES_FAILURE_LIMIT wrong passwords, until the cool-off ends or an admin unlocks it."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client
from django.urls import reverse

from tests import factories
from tests.factories import make_user
from tests.portal.test_site import run_django

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse"  # every factory user's
LOCKED_OUT = "Too many failed attempts to log in. Try again in 15 minutes."


def log_in(client: Client, username: str, password: str, url: str = "/login/") -> str:
    """Post the login form; the answer's status and page, or "logged in"."""
    response = client.post(url, {"username": username, "password": password})
    if response.status_code == 302:
        return "logged in"
    return f"{response.status_code} {response.content.decode()}"


def fail(client: Client, username: str, times: int, url: str = "/login/") -> None:
    for _ in range(times):
        log_in(client, username, "wrong", url)


def test_the_environment_sets_the_limit_and_the_cool_off() -> None:
    code = "from django.conf import settings as s; print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME)"
    result = run_django(code, AXES_FAILURE_LIMIT="3", AXES_COOLOFF_MINUTES="60")
    assert result.stdout.splitlines()[-1] == "3 1:00:00", result.stderr


def test_four_failures_leave_the_login_open(client: Client) -> None:
    make_user("olivia")
    fail(client, "olivia", 4)
    assert log_in(client, "olivia", PASSWORD) == "logged in"


def test_after_five_failures_even_the_right_password_is_refused(client: Client) -> None:
    make_user("olivia")
    fail(client, "olivia", 5)
    answer = log_in(client, "olivia", PASSWORD)
    assert answer.startswith("429 ")
    assert f"<li>{LOCKED_OUT}</li>" in answer.split('id="error-summary"')[1]
    assert "Please enter a correct username and password" not in answer
    assert 'name="username"' in answer  # the login page, to try again later
    assert client.get(reverse("dashboard"))["Location"].startswith("/login/")


def test_the_lock_is_on_the_user_name_from_that_address(client: Client) -> None:
    make_user("olivia")
    make_user("oscar")
    fail(client, "olivia", 5)
    assert log_in(client, "oscar", PASSWORD) == "logged in"
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert log_in(elsewhere, "olivia", PASSWORD) == "logged in"


def time_passes(minutes: float) -> None:
    """As if the recorded attempts were made `minutes` earlier."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=minutes))


def test_the_right_password_works_after_the_cool_off(client: Client) -> None:
    make_user("olivia")
    fail(client, "olivia", 5)
    time_passes(15.1)
    assert log_in(client, "olivia", PASSWORD) == "logged in"


def test_a_refused_attempt_starts_the_cool_off_again(client: Client) -> None:
    make_user("olivia")
    fail(client, "olivia", 5)
    time_passes(10)
    assert LOCKED_OUT in log_in(client, "olivia", PASSWORD)
    time_passes(10)
    assert LOCKED_OUT in log_in(client, "olivia", PASSWORD)


def test_a_success_resets_the_count(client: Client) -> None:
    make_user("olivia")
    fail(client, "olivia", 4)
    assert log_in(client, "olivia", PASSWORD) == "logged in"
    client.logout()
    fail(client, "olivia", 4)
    assert log_in(client, "olivia", PASSWORD) == "logged in"


def test_the_admin_login_is_throttled_too(client: Client) -> None:
    make_user("root", is_superuser=True, is_staff=True)
    fail(client, "root", 5, url="/admin/login/")
    answer = log_in(client, "root", PASSWORD, url="/admin/login/")
    assert answer.startswith("429 ")
    assert f'<p class="errornote">\n    {LOCKED_OUT}\n</p>' in answer
    assert "Batch Portal admin" in answer


def test_a_superuser_unlocks_a_user_by_deleting_the_attempt_in_the_admin(client: Client) -> None:
    make_user("olivia")
    fail(client, "olivia", 5)
    [attempt] = AccessAttempt.objects.filter(username="olivia")
    admin = Client()
    factories.log_in(admin, make_user("root", is_superuser=True, is_staff=True))
    changelist = admin.get("/admin/axes/accessattempt/").content.decode()
    assert "olivia" in changelist
    deleted = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert deleted["Location"] == "/admin/axes/accessattempt/"
    assert not AccessAttempt.objects.exists()
    assert log_in(client, "olivia", PASSWORD) == "logged in"
