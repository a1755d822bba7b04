"""The notifications page: each user turns their own emails on and off."""

import re

import pytest
from django.test import Client

from notifications.models import Notification, Recipient
from tests.factories import log_in, make_user
from tests.notifications.conftest import People, refused_batch

pytestmark = pytest.mark.django_db

URL = "/notifications/"
CHECKED = re.compile(r'<input type="checkbox" name="email_enabled"[^>]* checked>')


def test_the_page_says_where_and_what_the_portal_emails(client: Client, people: People) -> None:
    log_in(client, people.operator)

    page = client.get(URL).content.decode()

    assert "olivia@example.com" in page
    assert "Isometric refuses a batch" in page
    assert "credentials" not in page  # not theirs to change
    assert "Alderley Char" in page and "Brockwell Char" not in page
    assert CHECKED.search(page)


def test_a_credential_admin_is_told_of_credentials(client: Client, people: People) -> None:
    log_in(client, people.admin)

    page = client.get(URL).content.decode()

    assert "Isometric refuses an account's credentials" in page
    assert "expires within 14 days" in page
    assert "Isometric refuses a batch" not in page


def test_a_user_without_an_address_is_told_why_no_email_comes(client: Client, db: None) -> None:
    log_in(client, make_user("nemo", operator=True))

    page = client.get(URL).content.decode()

    assert "Your user has no email address" in page
    assert "You are not a member of any Isometric account yet" in page


def test_turning_them_off_drops_what_waits_and_on_again_takes_effect(
    client: Client, people: People
) -> None:
    log_in(client, people.operator)
    refused_batch(people.account)

    response = client.post(URL, {})

    assert response.status_code == 302
    assert response["Location"] == URL
    assert not Recipient.objects.get(user=people.operator).email_enabled
    assert not Notification.objects.filter(user=people.operator).exists()
    page = client.get(URL).content.decode()
    assert "Saved: the portal no longer emails you." in page
    assert not CHECKED.search(page)

    client.post(URL, {"email_enabled": "on"})
    assert Recipient.objects.get(user=people.operator).email_enabled


def test_a_user_changes_only_their_own_choice(client: Client, people: People) -> None:
    log_in(client, people.operator)

    client.post(URL, {"user": people.admin.pk, "email_enabled": ""})

    assert list(Recipient.objects.values_list("user__username", "email_enabled")) == [
        ("olivia", False)
    ]
